"""Approval: the draft waits; edit + approve sends the edit; reject sends nothing; regenerate uses feedback."""

from __future__ import annotations

from tests.support import ServerProcess, query, wait_until


def _draft(server: ServerProcess, tid: str) -> dict:
    return server.wait_status(tid, "awaiting_approval")["pending_draft"]


def test_edit_and_approve_sends_the_edited_text(server: ServerProcess, database_url: str) -> None:
    persona = server.create_assistant(autonomy="approve_all")
    tid = server.create_thread(persona["id"], "dana@example.com")["id"]
    draft = _draft(server, tid)
    assert draft["kind"] == "first" and draft["text"].startswith("Hello,")
    assert query(database_url, "SELECT count(*) AS n FROM sandbox_mail")[0]["n"] == 0, "nothing sent before approval"

    r = server.post(f"/api/threads/{tid}/approve", json={"wait_id": draft["wait_id"], "subject": "Edited subject",
                                                          "text": "My own words.\n\nAnna"})
    assert r.status_code == 202, r.text
    t = server.wait_status(tid, "waiting")
    assert [(m["subject"], m["text"]) for m in t["messages"]] == [("Edited subject", "My own words.\n\nAnna")]
    review = next(e for e in t["events"] if e["kind"] == "review_approve")
    assert review["actor"] == "user" and review["detail"]["edited"] == ["subject", "text"]

    # With approve_all, the reply waits for approval too; approving unedited sends the model's text.
    server.post(f"/api/threads/{tid}/sandbox-reply", json={"text": "I'm interested, what does it cost?"})
    reply_draft = _draft(server, tid)
    assert reply_draft["kind"] == "reply" and reply_draft["subject"] == "Re: Edited subject"
    server.post(f"/api/threads/{tid}/approve", json={})
    t = server.wait_messages(tid, 3)
    assert t["messages"][-1]["text"] == reply_draft["text"]


def test_reject_sends_nothing_and_hands_over(server: ServerProcess, database_url: str) -> None:
    persona = server.create_assistant(autonomy="approve_first")
    tid = server.create_thread(persona["id"], "erin@example.com")["id"]
    _draft(server, tid)
    assert server.post(f"/api/threads/{tid}/reject", json={}).status_code == 202
    t = server.wait_status(tid, "needs_human")
    assert t["messages"] == [] and t["pending_draft"] is None
    assert query(database_url, "SELECT count(*) AS n FROM sandbox_mail")[0]["n"] == 0
    assert query(database_url, "SELECT count(*) AS n FROM outbox")[0]["n"] == 0
    # Handing back makes the assistant draft again.
    assert server.post(f"/api/threads/{tid}/handback").status_code == 202
    assert _draft(server, tid)["kind"] == "first"


def test_regenerate_uses_feedback_and_old_approvals_are_stale(server: ServerProcess, model, database_url: str) -> None:
    _fake, script = model
    persona = server.create_assistant(autonomy="approve_first")
    tid = server.create_thread(persona["id"], "fay@example.com")["id"]
    first = _draft(server, tid)
    r = server.post(f"/api/threads/{tid}/regenerate", json={"wait_id": first["wait_id"],
                                                             "feedback": "mention the free trial"})
    assert r.status_code == 202
    second = wait_until(lambda: (d := server.thread(tid)["pending_draft"]) and d["wait_id"] != first["wait_id"] and d,
                        what="a regenerated draft")
    assert "(revised: mention the free trial)" in second["text"]
    assert "The user reviewed an earlier draft and asks: mention the free trial" in script.calls[-1]["user"]

    # An approval of the first draft arrives late: recorded as stale, nothing sent.
    server.post(f"/api/threads/{tid}/approve", json={"wait_id": first["wait_id"]})
    wait_until(lambda: any(e["kind"] == "stale" for e in server.thread(tid)["events"]), what="stale approval")
    assert server.thread(tid)["messages"] == []

    server.post(f"/api/threads/{tid}/approve", json={"wait_id": second["wait_id"]})
    t = server.wait_status(tid, "waiting")
    assert [m["text"] for m in t["messages"]] == [second["text"]]
    # approve_first: the answer to a reply goes out without approval.
    server.post(f"/api/threads/{tid}/sandbox-reply", json={"text": "Interested - what's the price?"})
    t = server.wait_messages(tid, 3)
    assert t["messages"][-1]["direction"] == "out" and t["status"] == "waiting"
