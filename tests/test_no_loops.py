"""No mail loops: automated mail (auto-replies, mailing lists, no-reply senders) is recorded and never answered."""

from __future__ import annotations

from typing import Any

from tests.support import ServerProcess, fire_timers, wait_until

AUTO = {"Auto-Submitted": "auto-replied"}
OOO = "I am out of the office until Monday. This is an automatic reply."


def _decisions(server: ServerProcess, tid: str, count: int) -> list[dict[str, Any]]:
    """Wait until the thread has decided on `count` inbound emails and is waiting again."""
    def check() -> list[dict[str, Any]] | None:
        t = server.thread(tid)
        found = [e for e in t["events"] if e["kind"] == "decision"]
        return found if len(found) >= count and t["status"] in ("waiting", "closed") else None

    return wait_until(check, what=f"{count} decisions in {tid}")


def _outbound(server: ServerProcess, tid: str) -> list[dict[str, Any]]:
    return [m for m in server.thread(tid)["messages"] if m["direction"] == "out"]


def test_auto_responder_ping_pong_gets_no_answer(server: ServerProcess, database_url: str, model) -> None:
    _fake, script = model
    persona = server.create_assistant(autonomy="autonomous", follow_up_count=2)
    tid = server.create_thread(persona["id"], "pat@example.com")["id"]
    server.wait_status(tid, "waiting")

    # The responder answers every email we send (twice to the first one); we answer none of its messages.
    rounds = [2, 1, 1]
    decided = 0
    for number, answers in enumerate(rounds):
        assert len(_outbound(server, tid)) == number + 1
        for _ in range(answers):
            r = server.post(f"/api/threads/{tid}/sandbox-reply",
                            json={"text": OOO, "subject": "Re: hi", "headers": AUTO})
            assert r.status_code == 202, r.text
            decided += 1
            _decisions(server, tid, decided)
            assert len(_outbound(server, tid)) == number + 1, "an automated message is never answered"
        if number < len(rounds) - 1:
            assert fire_timers(database_url, tid) == 1
            wait_until(lambda n=number: len(_outbound(server, tid)) == n + 2
                       and server.thread(tid)["status"] == "waiting", what="the scheduled follow-up")
    assert fire_timers(database_url, tid) == 1
    t = server.wait_status(tid, "closed")
    assert t["close_reason"] == "no_reply"

    # Only our scheduled emails went out: the first email and the persona's two follow-ups.
    out = [m for m in t["messages"] if m["direction"] == "out"]
    assert len(out) == 3 and out[1]["text"].startswith("Just following up (1)") and \
        out[2]["text"].startswith("Just following up (2)")
    inbound = [m for m in t["messages"] if m["direction"] == "in"]
    assert [m["auto_reply"] for m in inbound] == ["Auto-Submitted: auto-replied"] * 4
    decisions = [e for e in t["events"] if e["kind"] == "decision"]
    assert [(d["detail"]["intent"], d["detail"]["source"], d["detail"]["route"]) for d in decisions] == \
        [("auto_reply", "rules", "wait")] * 4
    assert all("Auto-Submitted: auto-replied" in d["summary"] for d in decisions)
    received = [e for e in t["events"] if e["kind"] == "received"]
    assert [e["detail"]["auto_reply"] for e in received] == ["Auto-Submitted: auto-replied"] * 4
    assert script.schemas() == ["FirstDraft", "ReplyDraft", "ReplyDraft"], "no automated message reached the model"


def test_mailing_list_and_no_reply_sender_get_no_answer(server: ServerProcess, model) -> None:
    _fake, script = model
    persona = server.create_assistant(autonomy="autonomous")
    listed = server.create_thread(persona["id"], "team@lists.example.org")["id"]
    noreply = server.create_thread(persona["id"], "no-reply@vendor.example")["id"]
    server.wait_status(listed, "waiting")
    server.wait_status(noreply, "waiting")

    # Both read like questions a person would answer; the headers and the sender say no person wrote them.
    server.post(f"/api/threads/{listed}/sandbox-reply",
                json={"text": "Your message is awaiting moderator approval. Any questions?",
                      "headers": {"List-Id": "Team <team.lists.example.org>"}})
    server.post(f"/api/threads/{noreply}/sandbox-reply", json={"text": "Thanks! How can we help you today?"})
    for tid, reason in ((listed, "List-Id mailing list"), (noreply, "no-reply sender")):
        [decision] = _decisions(server, tid, 1)
        assert decision["detail"]["intent"] == "auto_reply" and decision["detail"]["source"] == "rules"
        assert reason in decision["summary"]
        t = server.thread(tid)
        assert t["status"] == "waiting" and [m["direction"] for m in t["messages"]] == ["out", "in"]
        assert t["messages"][1]["auto_reply"] == reason
    assert "Classification" not in script.schemas() and "ReplyDraft" not in script.schemas()
