"""Pub/Sub push: only authenticated pushes count; repeated and out-of-order notifications give one answer."""

from __future__ import annotations

import base64
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support import ALICE, GoogleWorld, ServerProcess, query, start_outreach, thread_when, wait_until

SYNC_JOBS = "SELECT count(*) AS n FROM procrastinate_jobs WHERE task_name = 'ea:sync_mailbox'"


def _sync_jobs(database_url: str) -> int:
    return query(database_url, SYNC_JOBS)[0]["n"]


def test_bad_tokens_are_rejected_and_nothing_is_processed(google: GoogleWorld, google_server: ServerProcess,
                                                          database_url: str) -> None:
    google.sign_in(google_server, ALICE)
    wait_until(lambda: query(database_url, "SELECT 1 FROM procrastinate_jobs WHERE task_name = 'ea:sync_mailbox'"
                                           " AND status = 'succeeded'"), what="the sync queued at sign-in")
    google.gmail.deliver(ALICE, b"From: x@example.org\r\nTo: alice@example.com\r\nSubject: hi\r\n\r\nhello\r\n")
    before = _sync_jobs(database_url)
    signer = google.signer
    bad = {"forged": signer.forged(), "expired": signer.expired(), "wrong audience": signer.wrong_audience(),
           "wrong email": signer.wrong_email(), "unverified email": signer.unverified_email(),
           "wrong issuer": signer.wrong_issuer(), "not a JWT": "not-a-jwt"}
    for name, token in bad.items():
        r = google.push(google_server, ALICE, token=token)
        assert r.status_code in (401, 403), (name, r.status_code, r.text)
    body = google.signer.push_body(ALICE, google.gmail.history_id(ALICE))
    assert google_server.client.post("/webhooks/gmail", json=body).status_code == 401, "no Authorization header"
    assert google_server.client.post("/webhooks/gmail", json=body,
                                     headers={"Authorization": "Basic Zm9vOmJhcg=="}).status_code == 401
    assert _sync_jobs(database_url) == before, "a rejected push queues nothing"
    assert "Gmail push rejected" in google_server.log()

    # Authenticated but malformed: acknowledged (2xx) so Pub/Sub stops redelivering, logged, nothing queued.
    headers = google.signer.headers()
    for payload in ({"message": {"data": "%%%"}}, {"message": {"data": base64.b64encode(b"{}").decode()}},
                    {"nothing": True}, [1, 2]):
        r = google_server.client.post("/webhooks/gmail", json=payload, headers=headers)
        assert (r.status_code, r.json()["status"]) == (200, "malformed"), payload
    r = google_server.client.post("/webhooks/gmail", content=b"\xff not json", headers=headers)
    assert (r.status_code, r.json()["status"]) == (200, "malformed")
    unknown = google.push(google_server, "stranger@example.net", 5)
    assert (unknown.status_code, unknown.json()["status"]) == (200, "unknown_mailbox")
    assert _sync_jobs(database_url) == before
    assert "malformed Gmail push acknowledged" in google_server.log()

    # A valid push is accepted.
    assert google.push(google_server, ALICE).json()["status"] == "queued"
    assert _sync_jobs(database_url) == before + 1


def test_push_not_configured_rejects_everything(google: GoogleWorld, server_env: dict[str, str], tmp_path) -> None:
    server = google.server(server_env, tmp_path / "server.log", EA_PUBSUB_PUSH_AUDIENCE="",
                           EA_PUBSUB_PUSH_SERVICE_ACCOUNT="")
    try:
        r = google.push(server, ALICE)
        assert r.status_code == 403 and "EA_PUBSUB_PUSH_AUDIENCE" in r.json()["detail"]
    finally:
        server.stop()


def test_repeated_and_out_of_order_notifications_give_one_answer(google: GoogleWorld, google_server: ServerProcess,
                                                                 database_url: str, model) -> None:
    _fake, script = model
    alice = google.sign_in(google_server, ALICE)
    tid = start_outreach(alice, "bob@example.org")
    thread_when(alice, tid, lambda t: t["status"] == "waiting", what="first email")
    [first] = google.gmail.sent(ALICE)
    before_reply = google.gmail.history_id(ALICE)
    google.reply(ALICE, first, "Interesting. What does it cost?")
    after_reply = google.gmail.history_id(ALICE)

    # Each notification three times, the newer one first, all at once.
    order = [after_reply, before_reply, after_reply, after_reply, before_reply, before_reply]
    with ThreadPoolExecutor(len(order)) as pool:
        answers = list(pool.map(lambda h: google.push(google_server, ALICE, h), order))
    assert all(r.status_code == 200 for r in answers)
    assert {r.json()["status"] for r in answers} <= {"queued", "already_queued", "up_to_date"}

    t = thread_when(alice, tid, lambda t: len(t["messages"]) == 3 and t["status"] == "waiting", what="one answer")
    for h in order:  # late redeliveries after the sync
        assert google.push(google_server, ALICE, h).json()["status"] == "up_to_date"
    time.sleep(1.5)
    assert len(google.gmail.sent(ALICE)) == 2, "exactly one answer"
    assert [m["direction"] for m in alice.get(f"/api/threads/{tid}").json()["messages"]] == ["out", "in", "out"]
    assert [c["schema"] for c in script.calls].count("ReplyDraft") == 1
    assert query(database_url, "SELECT count(*) AS n FROM messages WHERE direction = 'in'")[0]["n"] == 1
    assert t["messages"][1]["text"] == "Interesting. What does it cost?"


@pytest.mark.parametrize("status", [429, 503])
def test_burst_of_transient_errors_succeeds_after_backoff(google: GoogleWorld, google_server: ServerProcess,
                                                          status: int) -> None:
    alice = google.sign_in(google_server, ALICE)
    google.gmail.inject_errors(status, 3, path_contains="/messages/send")
    tid = start_outreach(alice, "bob@example.org")
    thread_when(alice, tid, lambda t: t["status"] == "waiting", what="first email despite errors")
    [first] = google.gmail.sent(ALICE)
    google.gmail.inject_errors(status, 4, path_contains="/history")
    google.reply(ALICE, first, "Tell me more?")
    assert google.push(google_server, ALICE).json()["status"] == "queued"
    thread_when(alice, tid, lambda t: len(t["messages"]) == 3, what="answer despite errors")
    statuses = [r["status"] for r in google.gmail.requests if r["path"].endswith("/history")]
    assert statuses[statuses.index(status):] == [status] * 4 + [200]
    sends = [r["status"] for r in google.gmail.requests if r["path"].endswith("/messages/send")]
    assert sends == [status] * 3 + [200, 200], "retried, never sent twice"
    assert len(google.gmail.sent(ALICE)) == 2
    assert "retry 1 after backoff" in google_server.log()
