"""Restart: threads waiting for a reply and for approval continue from Postgres after the server restarts."""

from __future__ import annotations

from tests.support import ServerProcess


def test_waiting_threads_survive_a_restart(server: ServerProcess) -> None:
    auto = server.create_assistant(name="Auto", autonomy="autonomous")
    careful = server.create_assistant(name="Careful", autonomy="approve_all")
    waiting = server.create_thread(auto["id"], "gus@example.com")["id"]
    approving = server.create_thread(careful["id"], "hal@example.com")["id"]
    server.wait_status(waiting, "waiting")
    draft = server.wait_status(approving, "awaiting_approval")["pending_draft"]

    server.restart()

    assert server.thread(waiting)["status"] == "waiting"
    assert server.thread(approving)["pending_draft"] == draft
    server.post(f"/api/threads/{waiting}/sandbox-reply", json={"text": "Interested! What's next?"})
    t = server.wait_messages(waiting, 3)
    assert [m["direction"] for m in t["messages"]] == ["out", "in", "out"]
    server.post(f"/api/threads/{approving}/approve", json={"wait_id": draft["wait_id"]})
    t = server.wait_status(approving, "waiting")
    assert [m["text"] for m in t["messages"]] == [draft["text"]]
