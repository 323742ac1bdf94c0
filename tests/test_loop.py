"""The whole loop over HTTP in sandbox mode, against a real server process and a real PostgreSQL."""

from __future__ import annotations

from email import message_from_bytes, policy

from tests.support import ServerProcess, fire_timers, query, queue_follow_up, wait_until


def test_full_outreach_loop(server: ServerProcess, database_url: str, model) -> None:
    _fake, script = model
    persona = server.create_assistant(autonomy="autonomous", follow_up_count=1, follow_up_days=3)
    thread = server.create_thread(persona["id"], "Bob@Example.com", recipient_name="Bob", recipient_company="Clinic")
    tid = thread["id"]

    # First email: written by the model, sent to the fixed recipient, stored in the sandbox mailbox.
    t = server.wait_status(tid, "waiting")
    assert [m["direction"] for m in t["messages"]] == ["out"]
    first = t["messages"][0]
    assert first["subject"].startswith("An idea for you")
    assert first["text"].endswith("Anna\nAcme"), "the signature is appended by code"
    raw = query(database_url, "SELECT raw FROM sandbox_mail WHERE direction = 'out'")
    assert len(raw) == 1
    sent = message_from_bytes(bytes(raw[0]["raw"]), policy=policy.default)
    assert sent["To"].addresses[0].addr_spec == "bob@example.com" and "Anna from Acme" in sent["From"]
    assert sent["Message-ID"] == first["message_id"]
    assert t["follow_up_due_at"] is not None

    # A reply as the recipient takes the inbound path, is classified, and answered in the same conversation.
    r = server.post(f"/api/threads/{tid}/sandbox-reply", json={"text": "Sounds good - how much does it cost?"})
    assert r.status_code == 202, r.text
    t = server.wait_messages(tid, 3)
    assert [m["direction"] for m in t["messages"]] == ["out", "in", "out"]
    reply, answer = t["messages"][1], t["messages"][2]
    assert answer["subject"] == "Re: " + first["subject"]
    decision = next(e for e in t["events"] if e["kind"] == "decision")
    assert decision["detail"]["intent"] == "question" and decision["model"] == "fake-model"
    assert decision["detail"]["route"] == "respond"
    raw_answer = query(database_url, "SELECT raw, provider_thread_id FROM sandbox_mail WHERE direction = 'out' ORDER BY id")
    assert len({r["provider_thread_id"] for r in raw_answer}) == 1, "the answer stays in the same conversation"
    answer_mime = message_from_bytes(bytes(raw_answer[-1]["raw"]), policy=policy.default)
    assert answer_mime["In-Reply-To"] == reply["message_id"]
    assert first["message_id"] in answer_mime["References"] and reply["message_id"] in answer_mime["References"]
    # The reply reached the model only inside the untrusted delimiters.
    classify = next(c for c in script.calls if c["schema"] == "Classification")
    assert "<untrusted_email>\nSounds good - how much does it cost?\n</untrusted_email>" in classify["user"]

    # Silence: the follow-up timer fires and the follow-up goes out in the same thread.
    assert server.wait_status(tid, "waiting")
    assert fire_timers(database_url, tid) == 1
    t = server.wait_messages(tid, 4)
    assert t["messages"][-1]["text"].startswith("Just following up (1)")
    assert t["messages"][-1]["subject"] == "Re: " + first["subject"]

    # An unsubscribe reply closes the thread and suppresses the address, with no model call.
    calls_before = len(script.calls)
    server.post(f"/api/threads/{tid}/sandbox-reply", json={"text": "Please remove me from your list."})
    t = server.wait_status(tid, "closed")
    assert t["close_reason"] == "unsubscribed"
    assert len(script.calls) == calls_before, "unsubscribes are recognised by rules, not the model"
    assert query(database_url, "SELECT email, reason FROM suppressions") == [
        {"email": "bob@example.com", "reason": "unsubscribed by reply"}]
    assert len(t["messages"]) == 5

    # A new thread to that address is refused.
    r = server.post("/api/threads", json={"assistant_id": persona["id"], "recipient_email": "bob@example.com"})
    assert r.status_code == 409 and "suppression list" in r.json()["detail"]


def test_silent_thread_closes_after_last_follow_up(server: ServerProcess, database_url: str) -> None:
    persona = server.create_assistant(autonomy="autonomous", follow_up_count=1)
    tid = server.create_thread(persona["id"], "quiet@example.com")["id"]
    server.wait_status(tid, "waiting")
    assert fire_timers(database_url, tid) == 1
    server.wait_messages(tid, 2)
    server.wait_status(tid, "waiting")
    assert fire_timers(database_url, tid) == 1
    t = server.wait_status(tid, "closed")
    assert t["close_reason"] == "no_reply"
    assert len(t["messages"]) == 2, "no follow-up beyond the persona's count"


def test_stale_follow_up_timer_is_recorded_and_ignored(server: ServerProcess, database_url: str) -> None:
    persona = server.create_assistant(autonomy="autonomous")
    tid = server.create_thread(persona["id"], "carol@example.com")["id"]
    first_wait = server.wait_status(tid, "waiting")["wait_id"]
    server.post(f"/api/threads/{tid}/sandbox-reply", json={"text": "I am interested, tell me more?"})
    t = server.wait_messages(tid, 3)
    server.wait_status(tid, "waiting")
    # A timer tick that read the first wait as due just before the reply answered it queued its follow-up.
    queue_follow_up(database_url, tid, first_wait)
    stale = wait_until(lambda: [e for e in server.thread(tid)["events"] if e["kind"] == "stale"], what="stale event")
    assert stale[0]["detail"]["event"]["wait_id"] == first_wait
    t2 = server.thread(tid)
    assert len(t2["messages"]) == len(t["messages"]) == 3, "a stale timer sends nothing"
    assert t2["status"] == "waiting"
