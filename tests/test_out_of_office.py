"""Out of office: a stated return date moves the follow-up to the next working day; without one, the cadence holds."""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.support import ServerProcess, fire_timers, wait_until

AWAY = {"Auto-Submitted": "auto-replied"}


def _decided(server: ServerProcess, tid: str) -> dict:
    return wait_until(lambda: next((e for e in server.thread(tid)["events"] if e["kind"] == "decision"), None)
                      and server.thread(tid)["status"] == "waiting" and server.thread(tid), what="decision")


def test_return_date_moves_the_follow_up_to_the_working_day_after(server: ServerProcess, database_url: str) -> None:
    persona = server.create_assistant(autonomy="autonomous", follow_up_days=3, timezone="Europe/Berlin")
    tid = server.create_thread(persona["id"], "away@example.com")["id"]
    server.wait_status(tid, "waiting")
    server.post(f"/api/threads/{tid}/sandbox-reply", json={
        "subject": "Out of office", "headers": AWAY,
        "text": "I am out of the office until 2026-12-04 with limited access to email."})
    t = _decided(server, tid)
    decision = next(e for e in t["events"] if e["kind"] == "decision")["detail"]
    assert decision["intent"] == "out_of_office" and decision["out_of_office_until"] == "2026-12-04"
    # Friday 4 December → Monday 7 December, 09:00 in the persona's zone (08:00 UTC).
    assert datetime.fromisoformat(t["follow_up_due_at"]) == datetime.fromisoformat("2026-12-07T08:00:00+00:00")
    assert [m["direction"] for m in t["messages"]] == ["out", "in"], "an away message is never answered"
    assert fire_timers(database_url, tid) == 1
    t = server.wait_messages(tid, 3)
    assert t["messages"][-1]["text"].startswith("Just following up (1)")


def test_away_message_without_a_date_keeps_the_cadence(server: ServerProcess) -> None:
    persona = server.create_assistant(autonomy="autonomous", follow_up_days=3)
    tid = server.create_thread(persona["id"], "travel@example.com")["id"]
    first_due = datetime.fromisoformat(server.wait_status(tid, "waiting")["follow_up_due_at"])
    server.post(f"/api/threads/{tid}/sandbox-reply", json={
        "subject": "Automatic reply: travelling", "headers": AWAY, "text": "I'm travelling with limited access."})
    t = _decided(server, tid)
    decision = next(e for e in t["events"] if e["kind"] == "decision")["detail"]
    assert decision["intent"] == "out_of_office" and decision["out_of_office_until"] is None
    due = datetime.fromisoformat(t["follow_up_due_at"])
    assert first_due < due < first_due + timedelta(minutes=5), "the usual three days, counted from now"
    assert [m["direction"] for m in t["messages"]] == ["out", "in"]
