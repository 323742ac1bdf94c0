"""/metrics: the families move by the right amounts over a real reply cycle, in one process and across two."""

from __future__ import annotations

from pathlib import Path

import httpx
from cryptography.fernet import Fernet

from tests.processes import WorkerProcess, scrape, total, value
from tests.support import ALICE, GoogleWorld, ServerProcess, query, start_outreach, thread_when

SENT = "email_assistant_emails_sent_total"


def _reply_cycle(server: ServerProcess) -> str:
    persona = server.create_assistant(autonomy="autonomous")
    tid = server.create_thread(persona["id"], "bob@example.com")["id"]
    server.wait_status(tid, "waiting", timeout=60)
    return tid


def test_counters_move_by_the_right_amounts_over_a_reply_cycle(server: ServerProcess, database_url: str) -> None:
    tid = _reply_cycle(server)
    before = scrape(server.url)
    assert value(before, SENT, kind="first") == 1
    assert value(before, "email_assistant_threads", status="waiting") == 1
    assert value(before, "email_assistant_threads", status="closed") == 0, "every status is present"

    r = server.post(f"/api/threads/{tid}/sandbox-reply", json={"text": "Sounds good - how much does it cost?"})
    assert r.status_code == 202, r.text
    server.wait_messages(tid, 3, timeout=60)
    server.wait_status(tid, "waiting")
    after = scrape(server.url)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved(SENT, kind="reply") == 1 and moved(SENT, kind="first") == 0
    assert moved("email_assistant_replies_received_total") == 1
    assert moved("email_assistant_decisions_total", intent="question", source="model") == 1
    assert total(after, "email_assistant_decisions_total") == 1
    # Two model calls: the classification and the answer.
    assert moved("email_assistant_model_seconds_count", schema="Classification", outcome="ok") == 1
    assert moved("email_assistant_model_seconds_count", schema="ReplyDraft", outcome="ok") == 1
    assert moved("email_assistant_model_tokens_total", kind="input") > 0
    assert moved("email_assistant_model_tokens_total", kind="output") > 0
    assert moved("email_assistant_jobs_total", task="ea:resume_thread", outcome="succeeded") >= 1
    assert value(after, "email_assistant_jobs_total", task="ea:resume_thread", outcome="failed") == 0
    assert value(after, "email_assistant_threads", status="waiting") == 1
    assert value(after, "email_assistant_threads", status="active") == 0
    assert total(after, "email_assistant_send_queue_depth") == query(
        database_url, "SELECT count(*) AS n FROM send_queue WHERE dispatched_at IS NULL")[0]["n"]
    assert value(after, "email_assistant_gmail_errors_total", reason="http_500") == 0


def test_figures_are_right_across_a_server_and_a_separate_worker(server_env: dict[str, str], database_url: str,
                                                                  tmp_path: Path) -> None:
    server = ServerProcess(server_env, log_path=tmp_path / "server.log")
    worker = WorkerProcess(server_env, log_path=tmp_path / "worker.log", metrics=True)
    server.start(EA_WORKER_IN_PROCESS="false")
    worker.start()
    try:
        tids = [server.create_thread(server.create_assistant(autonomy="autonomous")["id"], f"p{i}@example.com")["id"]
                for i in range(2)]
        for tid in tids:
            server.wait_status(tid, "waiting", timeout=60)
        server.post(f"/api/threads/{tids[0]}/sandbox-reply", json={"text": "Interested - what is the price?"})
        server.wait_messages(tids[0], 3, timeout=60)
        on_server, on_worker = scrape(server.url), worker.scrape()
    finally:
        worker.stop()
        server.stop()
    sent_in_db = query(database_url, "SELECT kind, count(*) AS n FROM outbox WHERE status = 'sent' GROUP BY kind")
    assert {r["kind"]: r["n"] for r in sent_in_db} == {"first": 2, "reply": 1}
    # The worker did every send and every job; the server did none: summing the two endpoints gives the truth.
    assert total(on_server, SENT) == 0
    assert value(on_worker, SENT, kind="first") == 2 and value(on_worker, SENT, kind="reply") == 1
    assert total(on_server, "email_assistant_jobs_total") == 0
    assert value(on_worker, "email_assistant_jobs_total", task="ea:run_thread", outcome="succeeded") == 2
    assert total(on_worker, "email_assistant_replies_received_total") + total(
        on_server, "email_assistant_replies_received_total") == 1, "stored by whichever process received it"
    # The database figures come from the server only, so they are never counted twice.
    assert value(on_server, "email_assistant_threads", status="waiting") == 2
    assert not [k for k in on_worker if k[0] == "email_assistant_threads"]


def test_metrics_need_the_token_outside_local_mode(google: GoogleWorld, server_env: dict[str, str],
                                                   tmp_path: Path) -> None:
    server = google.server(server_env, tmp_path / "server.log", EA_METRICS_TOKEN="scrape-secret-123")
    try:
        assert httpx.get(f"{server.url}/metrics").status_code == 401
        assert httpx.get(f"{server.url}/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        samples = scrape(server.url, headers={"Authorization": "Bearer scrape-secret-123"})
        assert ("email_assistant_threads", (("status", "waiting"),)) in samples
        # Gmail errors by reason: two rate-limited attempts, then the send goes through.
        alice = google.sign_in(server, ALICE)
        google.gmail.inject_errors(429, count=2, path_contains="messages/send", reason="rateLimitExceeded")
        tid = start_outreach(alice, "bob@example.org")
        thread_when(alice, tid, lambda t: t["status"] == "waiting", what="first email sent", timeout=60)
        samples = scrape(server.url, headers={"Authorization": "Bearer scrape-secret-123"})
        assert value(samples, "email_assistant_gmail_errors_total", reason="rateLimitExceeded") == 2
        assert value(samples, SENT, kind="first") == 1 and len(google.gmail.sent(ALICE)) == 1
    finally:
        server.stop()
    server = google.server(server_env, tmp_path / "server2.log")
    try:
        r = httpx.get(f"{server.url}/metrics")
        assert r.status_code == 404 and "EA_METRICS_TOKEN" in r.text
    finally:
        server.stop()


def test_worker_metrics_beyond_loopback_need_a_token_or_the_container_subnet(tmp_path: Path) -> None:
    import pytest

    from agent.config import ConfigError, Settings

    exposed = {"EA_DATA_DIR": str(tmp_path), "EA_WORKER_METRICS_PORT": 9101, "EA_WORKER_METRICS_HOST": "0.0.0.0"}
    with pytest.raises(ConfigError, match="EA_METRICS_TOKEN"):
        Settings(**exposed).check()
    Settings(**exposed, EA_METRICS_TOKEN="a-long-scrape-token").check()
    Settings(**{**exposed, "EA_WORKER_METRICS_HOST": "127.0.0.1"}).check()
    Settings(**exposed, EA_LOCAL_ALLOWED_CLIENTS="10.89.64.0/24").check()  # compose: the subnet only, see below
    Settings(**exposed, GOOGLE_CLIENT_ID="id", GOOGLE_CLIENT_SECRET="secret",
             EA_SECRET_KEY=Fernet.generate_key().decode()).check()  # no token outside local mode: 404, see below


async def test_worker_endpoint_answers_the_allowed_clients_only(tmp_path: Path) -> None:
    from agent.config import Settings
    from server.metrics import worker_app

    local = worker_app(Settings(EA_DATA_DIR=str(tmp_path), EA_LOCAL_ALLOWED_CLIENTS="10.89.64.0/24"))

    async def get(app: object, client: str, path: str = "/metrics") -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(client, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://worker:9101") as http:
            return await http.get(path)

    assert (await get(local, "10.89.64.7")).status_code == 200
    assert (await get(local, "127.0.0.1", "/healthz")).json() == {"status": "ok"}
    refused = await get(local, "192.168.1.20")
    assert refused.status_code == 403 and "local mode" in refused.json()["detail"]
    signed_in = worker_app(Settings(EA_DATA_DIR=str(tmp_path), GOOGLE_CLIENT_ID="id", GOOGLE_CLIENT_SECRET="secret",
                                    EA_SECRET_KEY=Fernet.generate_key().decode()))
    off = await get(signed_in, "192.168.1.20")
    assert off.status_code == 404 and "EA_METRICS_TOKEN" in off.text
    assert (await get(signed_in, "192.168.1.20", "/healthz")).status_code == 200
