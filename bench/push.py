"""Push benchmark: Pub/Sub push → Gmail messages.send overhead in Google mode, against the local wire fakes.

Run: `.venv/bin/python -m bench.push [--rate 10] [--seconds 30] [--threads N] [--out FILE.json]
[--in-process-worker] [--env KEY=VALUE]... [--profile DIR] [--pg ADMIN_URL] [--keep]` (about 2 minutes on 2 cores
with the defaults, of which the 300 first emails take about one; up to a minute more when answers are missing).

It starts an embedded PostgreSQL (pgserver; or uses --pg), the fakes of tests/fakes/ in this process (Google OIDC
and token endpoint, Gmail REST, the Pub/Sub push signer, OpenAI answering at once through ScriptedModel), and the
real `email-assistant serve` plus a separate `email-assistant worker` as subprocesses (as docker-compose runs them;
--in-process-worker runs the worker inside `serve` instead). Alice signs in (which connects her Gmail), makes an
autonomous persona and N threads (default rate × seconds), whose first emails go out through the Gmail fake. Then,
at a steady `rate` a second, each thread's recipient replies (delivered into the Gmail fake) and a signed push
notification is POSTed to /webhooks/gmail, as Pub/Sub would. The server syncs Gmail's history, the graph runs and
the answer goes out through messages.send.

Latency per reply: push POST sent → the Gmail fake receiving that thread's answer (the fake's request-arrival
timestamp, same monotonic clock). The model answers in 0 s, so this is the whole path's overhead, nothing
subtracted. It also reports the push endpoint's own response time, the push statuses, and how often Google's
certificates were fetched (they must be fetched once: the fake serves them with Cache-Control max-age), where a
reply's time goes (push → sync's history.list → the reply's messages.get → the answer's send, from the fake's
timestamps), each job's queue wait and run time (procrastinate's events) and the CPU per reply. Every
process (fakes, bench, server, worker, Postgres) shares the machine: times are noisy, counts are not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg

from bench import procs
from bench.push_figures import Push, figures, jobs, ok_sends, table
from tests.fakes.gmail import FakeGmail
from tests.fakes.google_oidc import FakeGoogleOIDC
from tests.fakes.openai_fake import FakeOpenAI
from tests.fakes.pubsub_push import PushSigner
from tests.fakes.scripted_model import ScriptedModel
from tests.processes import WorkerProcess
from tests.support import (
    ALICE,
    ALWAYS_OPEN,
    PERSONA,
    PUSH_ACCOUNT,
    PUSH_AUDIENCE,
    GoogleWorld,
    ServerProcess,
    wait_until,
)

log = logging.getLogger("bench.push")
ROOT = Path(__file__).resolve().parent.parent
REPLY = "Interesting. What does it cost? (Sent from {address})"  # the address tells whose model calls are whose


@dataclass
class Config:
    """One run's workload."""

    rate: float = 10.0
    seconds: float = 30.0
    threads: int | None = None
    """Waiting threads, each replied to once; default rate × seconds."""
    in_process_worker: bool = False
    workers: int = 1
    """Separate `email-assistant worker` processes (ignored with in_process_worker)."""
    profile: Path | None = None
    """Folder for py-spy raw profiles of the server and worker during the pushes (None: no profiling)."""
    pg: str | None = None
    """A superuser conninfo to create the bench database on (None: an embedded pgserver)."""
    env: dict[str, str] = field(default_factory=dict)
    """Extra settings for the server and worker (e.g. EA_DB_POOL_SIZE)."""

    @property
    def count(self) -> int:
        """How many threads (and replies)."""
        return self.threads if self.threads is not None else max(1, round(self.rate * self.seconds))


def _scalar(url: str, sql: str) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql).fetchone()[0]


def _setup(google: GoogleWorld, server: ServerProcess, database_url: str, recipients: list[str]) -> httpx.Client:
    """Sign Alice in (connecting her Gmail), make an autonomous persona and one thread per recipient; wait until
    every first email went out and every thread waits for its reply."""
    alice = google.sign_in(server, ALICE)
    alice.patch("/api/settings/sending", json={"spacing_min_seconds": 0, "spacing_max_seconds": 0,
                                               "daily_cap": 2000}).raise_for_status()
    persona = alice.post("/api/assistants", json={**PERSONA, "autonomy": "autonomous", **ALWAYS_OPEN}) \
        .raise_for_status().json()["id"]
    # the persona is committed after the response is sent (see tests/support.start_outreach)
    wait_until(lambda: alice.get(f"/api/assistants/{persona}").status_code == 200, what="persona committed")
    for rcpt in recipients:
        alice.post("/api/threads", json={"assistant_id": persona, "recipient_email": rcpt}).raise_for_status()
    wait_until(lambda: _scalar(database_url, "SELECT count(*) FROM threads WHERE status = 'waiting'")
               >= len(recipients), timeout=60 + len(recipients), what=f"{len(recipients)} first emails")
    return alice


def _warm_up(google: GoogleWorld, server: ServerProcess, database_url: str) -> None:
    """One push before the measurement (nothing new in INBOX): the server's first push and sync are paid here."""
    r = google.push(server, ALICE)
    r.raise_for_status()
    head = google.gmail.history_id(ALICE)
    wait_until(lambda: _scalar(database_url, "SELECT max(history_id) FROM mailboxes") >= head,
               what="the warm-up sync")


async def _push_all(google: GoogleWorld, base_url: str, recipients: list[str], rate: float) -> list[Push]:
    """At `rate` a second: deliver the recipient's reply into the Gmail fake, then POST the signed push."""
    firsts = {parseaddr(str(m["To"]))[1].lower(): m for m in google.gmail.sent(ALICE)}
    pushes: list[Push] = []
    # no keep-alive: a connection the server closed while idle would fail a POST
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:
        async def one(push: Push, body: dict[str, Any], headers: dict[str, str]) -> None:
            push.sent = time.monotonic()
            r = await client.post("/webhooks/gmail", json=body, headers=headers)
            push.responded = time.monotonic()
            push.status = r.status_code
            push.outcome = r.json().get("status") if r.status_code == 200 else r.text[:200]

        start = time.monotonic()
        tasks = []
        for i, rcpt in enumerate(recipients):
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
            reply_id = google.reply(ALICE, firsts[rcpt], REPLY.format(address=rcpt))
            body = google.signer.push_body(ALICE, google.gmail.history_id(ALICE))
            push = Push(rcpt, time.monotonic(), reply_id)
            pushes.append(push)
            tasks.append(asyncio.create_task(one(push, body, google.signer.headers())))
        await asyncio.gather(*tasks)
    return pushes


def _wait_answers(gmail: FakeGmail, pushes: list[Push], timeout: float) -> None:
    """Until every recipient's second accepted send (the answer) arrived, or timeout; then a moment for extras."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sends = ok_sends(gmail)
        if all(len(sends.get(p.recipient, [])) >= 2 for p in pushes):
            break
        time.sleep(0.2)
    time.sleep(2.0)  # a duplicate answer would arrive now
    sends = ok_sends(gmail)
    for p in pushes:
        got = sends.get(p.recipient, [])
        p.answered = got[1] if len(got) >= 2 else None


def run(cfg: Config, work: Path) -> dict[str, Any]:
    """Start Postgres, the fakes, the server (and worker), run the pushes; the figures."""
    recipients = [f"reader{i}@example.org" for i in range(cfg.count)]
    oidc = FakeGoogleOIDC()
    gmail = FakeGmail(oidc.email_for_access_token, scope_lookup=oidc.scopes_for_access_token)
    oidc.keep_alive = gmail.keep_alive = True  # Google keeps connections open; the tests' fakes close each one
    with procs.database(cfg.pg, work, prefix="bench_push") as database_url, FakeOpenAI(responder=ScriptedModel()) as model, \
            oidc, gmail:
        oidc.add_user("110000000000000000001", ALICE, "Alice Example")
        google = GoogleWorld(oidc, gmail, PushSigner(oidc, audience=PUSH_AUDIENCE, service_account_email=PUSH_ACCOUNT))
        env = {"DATABASE_URL": database_url, "EA_DATA_DIR": str(work / "data"), "OPENAI_API_KEY": "bench-key",
               "OPENAI_BASE_URL": model.base_url, "EA_LLM_MODEL": "fake-model", "EA_LLM_MAX_RETRIES": "0",
               "EA_CHECK_DELIVERABILITY": "false", "EA_LOG_LEVEL": "WARNING",
               "EA_WORKER_IN_PROCESS": "true" if cfg.in_process_worker else "false", **cfg.env}
        server = google.server(env, work / "server.log", EA_WORKER_IN_PROCESS=env["EA_WORKER_IN_PROCESS"])
        workers = [] if cfg.in_process_worker else [
            WorkerProcess({**env, **google.env()}, log_path=work / f"worker-{i}.log") for i in range(cfg.workers)]
        try:
            for worker in workers:
                worker.start()
            t0 = time.monotonic()
            _setup(google, server, database_url, recipients)
            log.info("%d threads waiting after %.1f s", len(recipients), time.monotonic() - t0)
            _warm_up(google, server, database_url)
            pids = {"server": server.proc.pid,
                    **{("worker" if i == 0 else f"worker{i + 1}"): w.proc.pid for i, w in enumerate(workers)}}
            spies = _start_profiles(cfg, pids)
            since, cpu0 = datetime.now(UTC), _cpu(pids)
            pushes = asyncio.run(_push_all(google, server.url, recipients, cfg.rate))
            log.info("%d pushes sent; waiting for the answers", len(pushes))
            _wait_answers(gmail, pushes, timeout=60)
            cpu1 = _cpu(pids)
            for spy in spies.values():
                spy.wait(timeout=60)
            out = figures(pushes, gmail, oidc, model, rate=cfg.rate, env=cfg.env,
                          worker="in-process" if cfg.in_process_worker else f"separate x{cfg.workers}")
            out["cpu_ms_per_reply"] = {k: round((cpu1[k] - cpu0[k]) / len(pushes) * 1000, 1) for k in cpu0}
            out["jobs_ms"] = jobs(database_url, since)
            out["certs_cache_control"] = httpx.get(oidc.certs_url, timeout=10).headers.get("cache-control")
            if cfg.profile is not None:
                out["profile"] = {role: procs.top_frames(cfg.profile / f"{role}.txt") for role in spies}
            server.check_running()
            for worker in workers:
                worker.check_running()
        finally:
            for worker in workers:
                worker.stop()
            server.stop()
    return out


def _cpu(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds used so far by the server and worker (Postgres is not counted: it may be --pg's)."""
    return {role: sum(psutil.Process(pid).cpu_times()[:2]) for role, pid in pids.items()}


def _start_profiles(cfg: Config, pids: dict[str, int]) -> dict[str, subprocess.Popen[bytes]]:
    """py-spy on each process for the pushes' duration (when asked for and installed)."""
    if cfg.profile is None:
        return {}
    cfg.profile.mkdir(parents=True, exist_ok=True)
    seconds = int(cfg.count / cfg.rate) + 3
    spies = {role: procs.py_spy(pid, cfg.profile / f"{role}.txt", seconds) for role, pid in pids.items()}
    return {role: spy for role, spy in spies.items() if spy is not None}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse the command line, run, write the JSON and print the table; returns the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=10.0, help="replies (pushes) a second (default 10)")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to push (default 30)")
    parser.add_argument("--threads", type=int, default=None, help="threads, one reply each (default rate x seconds)")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    parser.add_argument("--in-process-worker", action="store_true", help="run the worker inside `serve`")
    parser.add_argument("--workers", type=int, default=1, help="separate worker processes (default 1)")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy the server and worker; raw files here")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="an extra setting for the server and worker (repeatable), e.g. EA_DB_POOL_SIZE=40")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (process logs) and say where")
    parser.add_argument("--pg", default=None, help="superuser conninfo to use instead of an embedded PostgreSQL")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for noisy in ("httpx", "pgserver"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    cfg = Config(rate=args.rate, seconds=args.seconds, threads=args.threads, in_process_worker=args.in_process_worker,
                 workers=args.workers,
                 profile=args.profile, pg=args.pg, env=dict(kv.split("=", 1) for kv in args.env))
    work = Path(tempfile.mkdtemp(prefix="ea-push-"))
    work.chmod(0o755)  # as root, pgserver runs postgres as an unprivileged user
    started = time.perf_counter()
    try:
        out = run(cfg, work)
    except BaseException:
        log.error("process logs kept in %s", work)
        raise
    if args.keep:
        log.info("process logs kept in %s", work)
    else:
        shutil.rmtree(work, ignore_errors=True)
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    out["run"] = {"date": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC", "seconds": round(time.perf_counter() - started, 1),
                  "commit": commit.strip()[:10], "config": asdict(cfg) | {"profile": str(cfg.profile or ""),
                  "pg": "given" if cfg.pg else "embedded pgserver"},
                  "machine": f"{platform.machine()}, {psutil.cpu_count()} cores, Python {platform.python_version()}"}
    if args.out is not None:
        args.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    sys.stdout.write(table(out) + "\n")
    return out


if __name__ == "__main__":
    main()
