"""Fault suite: the outside world misbehaves (Gmail, the model, Pub/Sub, PostgreSQL) and nothing is lost or doubled.

Already covered elsewhere and not repeated here: Gmail 429/503 bursts on send and history (test_google_push), a 500
after or before Gmail stored a send (test_google_send), an erroring or missing model (test_model_failures), an
expired history cursor (test_google_sync), one reply's pushes repeated and out of order (test_google_push).
"""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.crash import figures
from tests.crash.cluster import Cluster
from tests.crash.harness import Plan, Run
from tests.support import ALICE, GoogleWorld, ServerProcess, query, start_outreach, thread_when, wait_until


def _waiting_threads(google: GoogleWorld, client: httpx.Client, count: int) -> list[str]:
    """`count` threads whose first email went out, each to its own recipient."""
    tids = [start_outreach(client, f"lead{i}@example.org") for i in range(count)]
    for tid in tids:
        thread_when(client, tid, lambda t: t["status"] == "waiting", what="first email", timeout=60)
    return tids


def _sent_to(google: GoogleWorld, recipient: str) -> list[Any]:
    return [m for m in google.gmail.sent(ALICE) if m["To"].addresses[0].addr_spec == recipient]


# ---- kept fault classes that had no test yet ---------------------------------------------------------------------
def test_gmail_500_burst_on_sync_keeps_the_cursor_and_answers_once(google: GoogleWorld, google_server: ServerProcess
                                                                   ) -> None:
    alice = google.sign_in(google_server, ALICE)
    [tid] = _waiting_threads(google, alice, 1)
    [first] = google.gmail.sent(ALICE)
    google.gmail.inject_errors(500, 4, path_contains="/history")
    google.reply(ALICE, first, "What does it cost?")
    assert google.push(google_server, ALICE).status_code == 200
    thread_when(alice, tid, lambda t: len(t["messages"]) == 3, what="answer after the 500 burst", timeout=60)
    time.sleep(1)
    assert len(google.gmail.sent(ALICE)) == 2


@pytest.mark.parametrize("status", [429, 500, 503])
def test_model_error_burst_parks_then_retries_and_sends_once(google: GoogleWorld, google_server: ServerProcess, model,
                                                             status: int) -> None:
    fake, _script = model
    alice = google.sign_in(google_server, ALICE)
    fake.fail_next(3, status)
    tid = start_outreach(alice, "bob@example.org")
    t = thread_when(alice, tid, lambda t: t["status"] == "waiting", what="sent after the model came back", timeout=60)
    assert len(google.gmail.sent(ALICE)) == 1 and t["park_reason"] is None
    assert any(e["kind"] == "parked" for e in t["events"]), "the burst was visible as a park"


def test_model_timeout_parks_then_retries_and_sends_once(google: GoogleWorld, server_env: dict[str, str], model,
                                                         tmp_path: Path) -> None:
    fake, _script = model
    server = google.server(server_env, tmp_path / "server.log", EA_LLM_TIMEOUT_SECONDS="1")
    try:
        alice = google.sign_in(server, ALICE)
        fake.delay_next(2, 3)
        tid = start_outreach(alice, "bob@example.org")
        t = thread_when(alice, tid, lambda t: t["status"] == "waiting", what="sent after the timeouts", timeout=60)
        assert len(google.gmail.sent(ALICE)) == 1
        assert any("Timeout" in e["summary"] for e in t["events"] if e["kind"] == "parked"), t["events"]
    finally:
        server.stop()


# ---- new fault classes -------------------------------------------------------------------------------------------
def test_push_for_a_history_id_not_visible_yet_is_not_lost(google: GoogleWorld, google_server: ServerProcess) -> None:
    """Gmail's push can run ahead of history.list; the reply must still be answered without another notification."""
    alice = google.sign_in(google_server, ALICE)
    [tid] = _waiting_threads(google, alice, 1)
    [first] = google.gmail.sent(ALICE)
    google.gmail.lag_history(ALICE, google.gmail.history_id(ALICE))
    google.reply(ALICE, first, "What does it cost?")
    syncs = sum(r["path"].endswith("/history") for r in google.gmail.requests)
    assert google.push(google_server, ALICE).json()["status"] == "queued"
    wait_until(lambda: sum(r["path"].endswith("/history") for r in google.gmail.requests) > syncs,
               what="the sync of that push ran (and saw nothing yet)")
    time.sleep(1)
    google.gmail.lag_history(ALICE, None)  # the history catches up; Pub/Sub does not publish again
    try:
        thread_when(alice, tid, lambda t: len(t["messages"]) == 3, what="answer", timeout=30)
    except AssertionError:
        google.push(google_server, ALICE)  # tell lost-for-good from late: a later notification finds it?
        try:
            late = bool(wait_until(lambda: len(google.gmail.sent(ALICE)) == 2, timeout=20, what="answer after a push"))
        except AssertionError:
            late = False
        pytest.fail(f"the reply was not read after its own push ({'found by a later push' if late else 'lost'}); "
                    f"polling is the only other way it is ever read")
    assert len(google.gmail.sent(ALICE)) == 2


def test_notifications_three_times_and_shuffled_give_one_answer_each(google: GoogleWorld,
                                                                     google_server: ServerProcess,
                                                                     database_url: str) -> None:
    alice = google.sign_in(google_server, ALICE)
    tids = _waiting_threads(google, alice, 6)
    history_ids = []
    for i in range(6):
        [original] = _sent_to(google, f"lead{i}@example.org")
        google.reply(ALICE, original, f"Lead {i} here: how much is it?")
        history_ids.append(google.gmail.history_id(ALICE))
    pushes = history_ids * 3
    random.Random(12).shuffle(pushes)
    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(lambda h: google.push(google_server, ALICE, h).status_code, pushes))
    assert codes == [200] * len(pushes)
    for tid in tids:
        thread_when(alice, tid, lambda t: len(t["messages"]) == 3 and t["status"] == "waiting", what="answered",
                    timeout=60)
    late = pushes[:]
    random.Random(13).shuffle(late)
    for h in late:  # redeliveries after the answers
        assert google.push(google_server, ALICE, h).status_code == 200
    time.sleep(2)
    for i in range(6):
        assert len(_sent_to(google, f"lead{i}@example.org")) == 2, f"lead{i}: exactly one answer"
    assert query(database_url, "SELECT count(*) AS n FROM messages WHERE direction = 'in'")[0]["n"] == 6
    assert query(database_url, "SELECT count(*) AS n FROM events WHERE kind = 'decision'")[0]["n"] == 6


@pytest.mark.parametrize("kind", ["invalid_json", "missing_fields", "wrong_enum"])
def test_malformed_model_output_parks_with_a_reason_and_sends_nothing(google: GoogleWorld,
                                                                      google_server: ServerProcess, model,
                                                                      kind: str) -> None:
    fake, _script = model
    alice = google.sign_in(google_server, ALICE)
    fake.malformed(kind)
    first_try = start_outreach(alice, "ann@example.org")
    t = thread_when(alice, first_try, lambda t: t["status"] == "paused", what="parked on a broken first draft")
    assert t["park_reason"] and "language model" in t["park_reason"], t["park_reason"]
    assert google.gmail.sent(ALICE) == [] and google_server.client.get("/healthz").status_code == 200

    # A reply read while the model answers badly: parked, nothing sent; once it answers well, one answer.
    fake.recover()
    assert alice.post(f"/api/threads/{first_try}/resume").status_code == 202
    thread_when(alice, first_try, lambda t: t["status"] == "waiting", what="first email after recovery")
    [first] = google.gmail.sent(ALICE)
    fake.malformed(kind)
    google.reply(ALICE, first, "Sounds good, what does it cost?")
    google.push(google_server, ALICE)
    t = thread_when(alice, first_try, lambda t: t["status"] == "paused", what="parked on a broken classification")
    assert t["park_reason"] and "language model" in t["park_reason"], t["park_reason"]
    assert len(google.gmail.sent(ALICE)) == 1, "nothing sent on a malformed answer"
    fake.recover()
    assert alice.post(f"/api/threads/{first_try}/resume").status_code == 202
    thread_when(alice, first_try, lambda t: len(t["messages"]) == 3 and t["status"] == "waiting", what="one answer")
    time.sleep(1)
    assert len(google.gmail.sent(ALICE)) == 2


@pytest.mark.timeout(300)
@pytest.mark.parametrize("workers", [1, 0], ids=["separate-worker", "in-process-worker"])
def test_postgres_restarted_under_load_loses_and_doubles_nothing(tmp_path: Path, workers: int) -> None:
    """PostgreSQL stops (fast shutdown) twice for 3 s while threads work; a process that exits is restarted (as a
    supervisor would) but counted as a failure."""
    cluster = Cluster(tmp_path, workers=workers, poll_seconds=5)
    try:
        cluster.start()
        run = Run(cluster, Plan(kills=0, threads=8, replies_per_thread=2, workers=workers, thread_waves=1))
        run.setup_personas()
        run.start_wave(0)
        assert cluster.pg is not None
        for _outage in range(2):
            _pump(run, 5)
            cluster.pg.stop()
            _pump(run, 3, processes=False)  # replies keep arriving at Gmail while the database is away
            cluster.pg.start()
        wanted = run.plan.threads * run.plan.replies_per_thread
        _pump(run, 120, until=lambda: len(run.delivered) >= wanted and run.settled())
        result = figures.count(cluster, delivered=run.delivered)
        summary = figures.table(result)
        assert run.unexpected_exits == [], f"processes died of the outage: {run.unexpected_exits}\n{summary}"
        assert result["duplicate_emails_by_message_id"] == result["duplicate_emails_by_thread_step"] == 0, summary
        assert result["duplicate_answers_to_one_reply"] == 0, summary
        assert len(run.delivered) == wanted, f"only {len(run.delivered)} of {wanted} replies were due\n{summary}"
        assert (result["undecided_replies"], result["invalid_threads"], result["stuck_jobs"]) == (0, 0, 0), summary
    finally:
        cluster.close()


def _pump(run: Run, seconds: float, *, processes: bool = True, until: Any = None) -> None:
    """Keep replies flowing (and dead processes restarted) for `seconds`, or until `until()` holds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not (until and until()):
        if processes:
            run.tick()
        else:
            run.replies()
        time.sleep(0.2)
