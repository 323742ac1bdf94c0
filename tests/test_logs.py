"""Logs: JSON lines with request and job context, X-Request-ID echoed, and no body, token or key in a whole run."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import httpx
import pytest

from agent.keyring import KeyRing
from tests.processes import json_lines
from tests.support import ALICE, GoogleWorld, ServerProcess, start_outreach, thread_when, wait_until

REPLY = "Zebra quartz lantern: how much does your clinic plan cost per seat?"


@pytest.mark.xfail(strict=False, reason=(
    "open: a secret or body still reaches the JSON debug log after the merges; issue 11 stays open"))
def test_a_debug_run_in_json_logs_no_body_token_or_key(google: GoogleWorld, server_env: dict[str, str],
                                                        tmp_path: Path) -> None:
    openai_key = "sk-test-" + secrets.token_hex(16)
    server = google.server({**server_env, "OPENAI_API_KEY": openai_key}, tmp_path / "server.log",
                           EA_LOG_LEVEL="DEBUG", EA_LOG_FORMAT="json")
    try:
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
    log = server.log()
    lines = json_lines(log)
    assert len(lines) > 50, log[-2000:]
    not_json = [line for line in log.splitlines() if line.strip() and not line.startswith("{")]
    assert not not_json, not_json[:5]
    assert all({"time", "level", "logger", "message"} <= set(e) for e in lines)
    assert any(e["level"] == "DEBUG" for e in lines), "DEBUG was on"

    # Context: the request id on the request's lines, job and thread on the job's lines.
    assert any(e.get("request_id") == "trace-me-42" and e["logger"] == "uvicorn.access" for e in lines)
    assert all(e.get("request_id") for e in lines if e["logger"] == "uvicorn.access")
    done = [e for e in lines if e["message"].startswith("job done: ea:resume_thread")]
    assert done and all(e["thread_id"] == tid and e["job"] and e["task"] == "ea:resume_thread" for e in done)
    assert {e["outcome"] for e in done} == {"succeeded"}
    assert any(e.get("thread_id") == tid and e.get("user_id") for e in lines if e["logger"] == "uvicorn.access")

    # Nothing secret, and no email body, anywhere in the run's log.
    bodies = [m["text"] for m in detail["messages"]]
    assert REPLY in bodies[1] and len(bodies) == 3
    tokens = [*google.oidc._access, *google.oidc._refresh]
    assert len(tokens) >= 2
    forbidden = {
        "the OpenAI key": [openai_key],
        "EA_SECRET_KEY": [google.secret_key],
        "the session secret": [KeyRing([google.secret_key]).session_secret],
        "the Google client secret": [google.oidc.client_secret],
        "an OAuth token": tokens,
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
