"""Logs: JSON lines with request and job context, X-Request-ID echoed, and no body, token or key in a whole run."""

from __future__ import annotations

import json
import logging
import secrets
import time
from pathlib import Path

import httpx
import pytest

from agent import logs
from agent.keyring import KeyRing
from tests.processes import WorkerProcess, json_lines
from tests.support import ALICE, GoogleWorld, ServerProcess, start_outreach, thread_when, wait_until

REPLY = "Zebra quartz lantern: how much does your clinic plan cost per seat?"


def test_a_debug_run_in_json_logs_no_body_token_or_key(google: GoogleWorld, server_env: dict[str, str],
                                                        tmp_path: Path) -> None:
    """A whole Google-mode run at DEBUG, a server and a separate worker: their logs hold no secret and no body."""
    openai_key = "sk-test-" + secrets.token_hex(16)
    debug = {"OPENAI_API_KEY": openai_key, "EA_LOG_LEVEL": "DEBUG", "EA_LOG_FORMAT": "json",
             "EA_WORKER_IN_PROCESS": "false"}
    worker = WorkerProcess({**server_env, **google.env(**debug)}, log_path=tmp_path / "worker.log")
    server = google.server({**server_env, "OPENAI_API_KEY": openai_key}, tmp_path / "server.log", **debug)
    try:
        worker.start()
        alice = google.sign_in(server, ALICE)
        tid = start_outreach(alice, "bob@example.org")
        thread_when(alice, tid, lambda t: t["status"] == "waiting", what="first email sent", timeout=60)
        [first] = google.gmail.sent(ALICE)
        google.reply(ALICE, first, REPLY)
        assert google.push(server, ALICE).status_code == 200
        wait_until(lambda: len(google.gmail.sent(ALICE)) == 2, what="the answer", timeout=60)
        detail = thread_when(alice, tid, lambda t: t["status"] == "waiting" and len(t["messages"]) == 3,
                             what="waiting again")
        r = alice.get("/api/threads", headers={"X-Request-ID": "trace-me-42"})
        assert r.headers["x-request-id"] == "trace-me-42"
        time.sleep(0.5)  # the access log line of the last request
    finally:
        server.stop()
        worker.stop()
    server_log, worker_log = server.log(), worker.log()
    log = server_log + worker_log
    lines, worker_lines = json_lines(log), json_lines(worker_log)
    assert len(lines) > 50, log[-2000:]
    not_json = [line for line in log.splitlines() if line.strip() and not line.startswith("{")]
    assert not not_json, not_json[:5]
    assert all({"time", "level", "logger", "message"} <= set(e) for e in lines)
    assert any(e["level"] == "DEBUG" for e in json_lines(server_log)), "DEBUG was on in the server"
    assert any(e["level"] == "DEBUG" for e in worker_lines), "DEBUG was on in the worker"
    assert any(e["level"] == "DEBUG" and e["logger"].startswith(("agent", "runtime", "graphs"))
               for e in worker_lines), "our own DEBUG lines are kept"
    foreign = {e["logger"] for e in lines if e["level"] == "DEBUG"
               and e["logger"].split(".")[0] not in logs.DEBUG_LOGGERS}
    assert not foreign, f"other libraries' DEBUG (bodies, headers, the PKCE verifier) reached the log: {foreign}"

    # Context: the request id on the request's lines, job and thread on the job's lines (which ran in the worker).
    assert any(e.get("request_id") == "trace-me-42" and e["logger"] == "uvicorn.access" for e in lines)
    assert all(e.get("request_id") for e in lines if e["logger"] == "uvicorn.access")
    done = [e for e in worker_lines if e["message"].startswith("job done: ea:resume_thread")]
    assert done and all(e["thread_id"] == tid and e["job"] and e["task"] == "ea:resume_thread" for e in done)
    assert {e["outcome"] for e in done} == {"succeeded"}
    assert not [e for e in json_lines(server_log) if e["message"].startswith("job done")], "the server ran no job"
    assert any(e.get("thread_id") == tid and e.get("user_id") for e in lines if e["logger"] == "uvicorn.access")

    # Nothing secret, and no email body, anywhere in the run's logs.
    bodies = [m["text"] for m in detail["messages"]]
    assert REPLY in bodies[1] and len(bodies) == 3
    access, refresh = list(google.oidc._access), list(google.oidc._refresh)
    assert access and refresh, "the run used Google tokens"
    forbidden = {
        "the OpenAI key": [openai_key],
        "EA_SECRET_KEY": [google.secret_key],
        "the session secret": [KeyRing([google.secret_key]).session_secret],
        "the Google client secret": [google.oidc.client_secret],
        "an OAuth access token": access,
        "an OAuth refresh token": refresh,
        "an email body": [line for body in bodies for line in body.splitlines() if len(line) > 12],
    }
    escaped = log.replace("\\n", "\n")
    for what, values in forbidden.items():
        for secret in values:
            assert secret not in log and secret not in escaped and json.dumps(secret)[1:-1] not in log, \
                f"{what} appears in the log: {secret[:12]}…"


def test_request_id_is_read_or_generated_and_echoed(server: ServerProcess) -> None:
    r = httpx.get(f"{server.url}/healthz", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    generated = httpx.get(f"{server.url}/healthz").headers["x-request-id"]
    assert len(generated) == 32 and int(generated, 16) >= 0
    assert httpx.get(f"{server.url}/healthz").headers["x-request-id"] != generated
    unsafe = httpx.get(f"{server.url}/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert unsafe.headers["x-request-id"] != "bad id\twith spaces", "an unsafe id is replaced"
    wait_until(lambda: "request_id=abc-123" in server.log(), what="the request id in the text log")


def _record(name: str, level: int, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_other_libraries_debug_is_dropped_ours_kept_and_secrets_redacted() -> None:
    """authlib logs the PKCE verifier and tokens at DEBUG, httpcore2 response headers: such records never pass."""
    redact = logs.ContextFilter(["my-session-secret-value"])
    for name in ("authlib.integrations.base_client.sync_app", "httpcore2.http11", "langgraph.pregel", "somelib"):
        assert not redact.filter(_record(name, logging.DEBUG, "Using code_verifier: %r", "abc")), name
    ours = _record("runtime.jobs", logging.DEBUG, "claimed %s with my-session-secret-value", "ya29.a0AfB_token-x")
    assert redact.filter(ours)
    assert ours.getMessage() == "claimed [redacted] with [redacted]"
    assert redact.filter(_record("authlib", logging.WARNING, "token refresh failed"))
    job = _record("procrastinate.worker", logging.DEBUG, "Starting job ea:resume_thread[7](thread_id='t', text='hi')")
    assert redact.filter(job) and job.getMessage() == "Starting job ea:resume_thread[7](…)"


@pytest.fixture
def restored_logging() -> object:
    """logs.configure changes the process's logging: put the root's handlers and the loggers' levels back after."""
    root = logging.getLogger()
    names = (*logs.CHATTY, *logs.QUIET, *logs.JOB_CHATTER, "uvicorn", "uvicorn.error", "uvicorn.access")
    saved = root.handlers[:], root.level, {n: logging.getLogger(n).level for n in names}
    yield
    handlers, level, levels = saved
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


async def test_ticks_and_procrastinates_per_job_lines_stay_out_of_an_info_log(caplog: pytest.LogCaptureFixture,
                                                                              restored_logging: object) -> None:
    from types import SimpleNamespace

    from runtime.jobs import observe_job

    logs.configure(level="INFO", fmt="text")  # replaces the root's handlers, caplog's too: put it back
    logging.getLogger().addHandler(caplog.handler)
    assert not logging.getLogger("procrastinate.worker.in-process").isEnabledFor(logging.INFO)
    assert not logging.getLogger("procrastinate.periodic").isEnabledFor(logging.INFO)
    assert logging.getLogger("procrastinate.worker").isEnabledFor(logging.WARNING)

    async def ok() -> None:
        return None

    async def boom() -> None:
        raise RuntimeError("tick failed")

    def job(task: str, **kwargs: object) -> SimpleNamespace:
        return SimpleNamespace(job=SimpleNamespace(id=1, task_name=task, task_kwargs=kwargs))

    with caplog.at_level(logging.DEBUG, logger="runtime.jobs"):  # to see that a tick's line is DEBUG, not dropped
        await observe_job(ok, job("ea:timers", timestamp=1), None)
        with pytest.raises(RuntimeError):
            await observe_job(boom, job("ea:timers", timestamp=2), None)
        await observe_job(ok, job("ea:resume_thread", thread_id="t", event={}), None)
    levels = [(r.getMessage(), r.levelname) for r in caplog.records if r.getMessage().startswith("job done")]
    assert levels == [("job done: ea:timers #1 succeeded", "DEBUG"), ("job done: ea:timers #1 failed", "INFO"),
                      ("job done: ea:resume_thread #1 succeeded", "INFO")]
    logs.configure(level="DEBUG", fmt="text")
    assert logging.getLogger("procrastinate.worker").isEnabledFor(logging.DEBUG)
