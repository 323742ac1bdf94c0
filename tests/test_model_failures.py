"""No model configured, and a model that errors: the thread parks with its reason and continues later."""

from __future__ import annotations

from tests.support import ServerProcess, wait_until


def test_no_model_parks_then_continues_once_configured(server: ServerProcess) -> None:
    server.restart(OPENAI_API_KEY="", OPENAI_BASE_URL="")
    ready = server.client.get("/readyz").json()
    assert ready["model"].startswith("not configured")
    persona = server.create_assistant(autonomy="autonomous")
    tid = server.create_thread(persona["id"], "ian@example.com")["id"]
    t = server.wait_status(tid, "paused")
    assert "No language model is configured" in t["park_reason"] and "OPENAI_API_KEY" in t["park_reason"]
    assert any(e["kind"] == "parked" for e in t["events"])
    # The server keeps serving.
    assert server.client.get("/api/assistants").status_code == 200

    server.restart()  # now with the model configured; the queued retry continues the thread
    t = server.wait_status(tid, "waiting", timeout=40)
    assert len(t["messages"]) == 1 and t["park_reason"] is None


def test_erroring_model_parks_and_resume_continues(server: ServerProcess, model) -> None:
    fake, _script = model
    fake.fail_always(500)
    persona = server.create_assistant(autonomy="autonomous")
    tid = server.create_thread(persona["id"], "jo@example.com")["id"]
    t = server.wait_status(tid, "paused")
    assert "The language model failed" in t["park_reason"]
    assert server.client.get("/healthz").status_code == 200
    fake.recover()
    assert server.post(f"/api/threads/{tid}/resume").status_code == 202
    t = server.wait_status(tid, "waiting")
    assert len(t["messages"]) == 1
    parked = [e for e in t["events"] if e["kind"] == "parked"]
    assert parked and wait_until(lambda: server.thread(tid)["park_reason"] is None, what="park reason cleared")
