"""A graceful stop (SIGTERM) lets the running job finish within a bounded time: the email it was writing goes out."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

from tests.fakes.openai_fake import FakeOpenAI
from tests.fakes.scripted_model import ScriptedModel
from tests.support import ServerProcess, query, wait_until

MODEL_SECONDS = 3.0


def test_sigterm_during_a_model_call_finishes_the_job_then_exits(database_url: str, tmp_path: Path) -> None:
    script = ScriptedModel()
    called = threading.Event()

    def slow(body: dict) -> dict | str:
        called.set()
        time.sleep(MODEL_SECONDS)
        return script(body)

    with FakeOpenAI(responder=slow) as fake:
        server = ServerProcess({"DATABASE_URL": database_url, "EA_DATA_DIR": str(tmp_path / "data"),
                                "OPENAI_API_KEY": "k", "OPENAI_BASE_URL": fake.base_url, "EA_LLM_MAX_RETRIES": "0"},
                               log_path=tmp_path / "server.log")
        server.start()
        try:
            persona = server.create_assistant(autonomy="autonomous")
            tid = server.create_thread(persona["id"], "bob@example.com")["id"]
            assert called.wait(30), "the first email is being written"
            t0 = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            code = server.proc.wait(timeout=30)
            took = time.monotonic() - t0
        finally:
            server.stop()
    # uvicorn re-raises the signal once its shutdown (ours included) is complete, so the exit status is SIGTERM's.
    assert code in (0, -signal.SIGTERM) and took < 20, (code, took)
    assert took >= MODEL_SECONDS - 1, "it waited for the model call instead of dropping the job"
    assert query(database_url, "SELECT count(*) AS n FROM sandbox_mail WHERE direction = 'out'")[0]["n"] == 1
    [thread] = query(database_url, "SELECT status FROM threads WHERE id = %s", (tid,))
    assert thread["status"] == "waiting", "the job ran to its next wait before the process exited"
    wait_until(lambda: query(database_url, "SELECT count(*) AS n FROM procrastinate_jobs WHERE status = 'doing'")[0][
        "n"] == 0, what="no job left doing", timeout=5)
