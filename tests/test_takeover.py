"""Human control: take over, write your own reply, hand back; pause holds everything; stop is final."""

from __future__ import annotations

from tests.support import ServerProcess, fire_timers, query, queue_follow_up, wait_until


def test_takeover_own_reply_and_hand_back(server: ServerProcess, database_url: str) -> None:
    persona = server.create_assistant(autonomy="autonomous")
    tid = server.create_thread(persona["id"], "nina@example.com")["id"]
    first = server.wait_status(tid, "waiting")["messages"][0]
    assert server.post(f"/api/threads/{tid}/takeover").status_code == 202
    server.wait_status(tid, "needs_human")

    # The recipient writes while the human has the thread: stored and shown, not answered by the assistant.
    server.post(f"/api/threads/{tid}/sandbox-reply", json={"text": "Can we talk on Friday?"})
    t = wait_until(lambda: len((t := server.thread(tid))["messages"]) == 2 and t, what="the reply stored")
    assert t["status"] == "needs_human" and not any(e["kind"] == "ignored" for e in t["events"])

    assert server.post(f"/api/threads/{tid}/reply", json={"text": "Friday 10:00 works. Anna"}).status_code == 202
    t = server.wait_messages(tid, 3)
    mine = t["messages"][2]
    assert mine["author"] == "human" and mine["text"] == "Friday 10:00 works. Anna"
    assert mine["subject"] == "Re: " + first["subject"] and t["status"] == "needs_human"
    threads = {r["provider_thread_id"] for r in query(database_url, "SELECT provider_thread_id FROM sandbox_mail"
                                                                    " WHERE direction = 'out'")}
    assert len(threads) == 1, "the human's reply goes into the same conversation"

    assert server.post(f"/api/threads/{tid}/handback").status_code == 202
    t = server.wait_status(tid, "waiting")
    assert len(t["messages"]) == 3, "the reply the human answered is not answered again"
    assert any(e["kind"] == "handed_back" for e in t["events"])


def test_pause_holds_replies_and_timers_until_resume(server: ServerProcess, database_url: str) -> None:
    persona = server.create_assistant(autonomy="autonomous")
    tid = server.create_thread(persona["id"], "omar@example.com")["id"]
    server.wait_status(tid, "waiting")
    assert server.post(f"/api/threads/{tid}/pause").status_code == 202
    assert server.thread(tid)["status"] == "paused"
    server.post(f"/api/threads/{tid}/sandbox-reply", json={"text": "Interested, what is the price?"})
    wait_until(lambda: any(e["kind"] == "held" for e in server.thread(tid)["events"]), what="held reply")
    assert len(server.thread(tid)["messages"]) == 2, "nothing is sent while paused"

    assert server.post(f"/api/threads/{tid}/resume").status_code == 202
    t = server.wait_messages(tid, 3)
    assert t["messages"][-1]["direction"] == "out" and t["status"] == "waiting"

    last_wait = t["wait_id"]
    assert server.post(f"/api/threads/{tid}/stop").status_code == 202
    assert server.thread(tid)["close_reason"] == "stopped"
    assert fire_timers(database_url, tid, wait_id=last_wait) == 0, "a stopped thread has no timer left"
    queue_follow_up(database_url, tid, last_wait)  # one a tick queued just before the stop
    server.post(f"/api/threads/{tid}/sandbox-reply", json={"text": "Hello again?"})
    wait_until(lambda: len([e for e in server.thread(tid)["events"] if e["kind"] == "ignored"]) == 2,
               what="the timer and the reply ignored after stop")
    assert [m["direction"] for m in server.thread(tid)["messages"]] == ["out", "in", "out", "in"]
