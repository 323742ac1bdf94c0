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
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg

from bench import procs
from bench.pipeline import pct
from tests.fakes import _gmail_mime as mime
from tests.fakes.gmail import FakeGmail
from tests.fakes.google_oidc import CERTS_PATH, FakeGoogleOIDC
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
TARGET_P99_MS = 100.0
REPLY = "Interesting. What does it cost? (Sent from {address})"  # the address tells whose model calls are whose
SEND_PATH = "/messages/send"


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


@dataclass
class Push:
    """One reply's push: when it was POSTed, answered, and what the endpoint said."""

    recipient: str
    sent: float
    reply_id: str = ""
    """The reply's Gmail message id (its messages.get marks when the sync read it)."""
    responded: float | None = None
    answered: float | None = None
    status: int | None = None
    outcome: str | None = None


@contextmanager
def _postgres(admin: str | None, work: Path) -> Iterator[str]:
    """A fresh database's conninfo, on `admin` or on an embedded server that lives as long as this block."""
    server = None
    if admin is None:
        import pgserver

        server = pgserver.get_server(work / "pg", cleanup_mode="delete")
        admin = server.get_uri()
    name = f"bench_push_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        yield psycopg.conninfo.make_conninfo(admin, dbname=name)
    finally:
        if server is not None:
            server.cleanup()
        else:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _scalar(url: str, sql: str) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql).fetchone()[0]


def _send_times(gmail: FakeGmail) -> dict[str, list[tuple[float, int]]]:
    """Per recipient, (arrival time, status) of every messages.send the Gmail fake received, in arrival order."""
    out: dict[str, list[tuple[float, int]]] = {}
    for r in sorted(list(gmail.requests), key=lambda r: r["at"]):
        if r["method"] == "POST" and r["path"].endswith(SEND_PATH) and isinstance(r["body"], dict):
            to = parseaddr(str(mime.parse(mime.b64url_decode(r["body"].get("raw", "")))["To"]))[1].lower()
            out.setdefault(to, []).append((r["at"], r["status"]))
    return out


def _ok_sends(gmail: FakeGmail) -> dict[str, list[float]]:
    """Per recipient, arrival times of the messages.send calls the fake accepted."""
    return {to: [at for at, status in calls if status == 200] for to, calls in _send_times(gmail).items()}


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
        sends = _ok_sends(gmail)
        if all(len(sends.get(p.recipient, [])) >= 2 for p in pushes):
            break
        time.sleep(0.2)
    time.sleep(2.0)  # a duplicate answer would arrive now
    sends = _ok_sends(gmail)
    for p in pushes:
        got = sends.get(p.recipient, [])
        p.answered = got[1] if len(got) >= 2 else None


def _stages(pushes: list[Push], gmail: FakeGmail, model: FakeOpenAI) -> dict[str, dict[str, float]]:
    """Where a reply's time goes, from the fakes' arrival times: push → the next history.list (the sync started),
    → the reply's first messages.get (the sync read it), → the answer's messages.send; and inside that last span,
    the read → the thread's first model call after it → its last model call → the send."""
    calls: dict[str, list[float]] = {}
    for body, at in zip(list(model.requests), list(model.arrivals), strict=False):
        text = json.dumps(body.get("messages"))
        for p in pushes:
            if p.recipient in text:
                calls.setdefault(p.recipient, []).append(at)
                break
    history = sorted(r["at"] for r in gmail.requests if r["path"].endswith("/history"))
    reads: dict[str, float] = {}
    for r in sorted(gmail.requests, key=lambda r: r["at"]):
        reads.setdefault(r["path"].rsplit("/", 1)[-1], r["at"])
    spans: dict[str, list[float]] = {"push_to_history": [], "history_to_read": [], "read_to_send": [],
                                     "read_to_model": [], "model_to_model": [], "model_to_send": []}
    for p in pushes:
        sync = next((at for at in history if at >= p.sent), None)
        read = reads.get(p.reply_id)
        if sync is None or read is None or p.answered is None:
            continue
        # a reply read by a sync that started before its push: that sync's start counts as its push's
        sync = min(sync, read)
        spans["push_to_history"].append(max(0.0, sync - p.sent))
        spans["history_to_read"].append(read - sync)
        spans["read_to_send"].append(p.answered - read)
        mine = [at for at in calls.get(p.recipient, []) if read <= at <= p.answered]
        if mine:
            spans["read_to_model"].append(mine[0] - read)
            spans["model_to_model"].append(mine[-1] - mine[0])
            spans["model_to_send"].append(p.answered - mine[-1])
    return {k: _ms(v, 0.5, 0.99) for k, v in spans.items()}


JOBS_SQL = """
SELECT j.task_name || coalesce(' ' || (j.args->'event'->>'type'), ''), count(*),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM s.at - d.at)),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM s.at - d.at)),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM e.at - s.at)),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM e.at - s.at))
FROM procrastinate_jobs j
JOIN LATERAL (SELECT min(at) AS at FROM procrastinate_events WHERE job_id = j.id AND type = 'deferred') d ON true
JOIN LATERAL (SELECT min(at) AS at FROM procrastinate_events WHERE job_id = j.id AND type = 'started') s ON true
JOIN LATERAL (SELECT max(at) AS at FROM procrastinate_events
              WHERE job_id = j.id AND type IN ('succeeded', 'failed')) e ON true
WHERE d.at >= %s AND e.at IS NOT NULL GROUP BY 1 ORDER BY 1"""


def _jobs(database_url: str, since: datetime) -> dict[str, dict[str, float]]:
    """Per task (and event), the jobs queued since `since` that finished: how many, queue wait (deferred → started,
    including any scheduled delay) and run time (started → finished), p50/p99 in ms, from procrastinate's events."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(JOBS_SQL, (since,)).fetchall()
    return {task: {"jobs": n, "wait_p50": round(w50 * 1000, 1), "wait_p99": round(w99 * 1000, 1),
                   "run_p50": round(r50 * 1000, 1), "run_p99": round(r99 * 1000, 1)}
            for task, n, w50, w99, r50, r99 in rows}


def _ms(values: list[float], *qs: float) -> dict[str, float]:
    out = {f"p{round(q * 100)}": round(pct(values, q) * 1000, 1) for q in qs}
    out["max"] = round(max(values) * 1000, 1) if values else float("nan")
    return out


def figures(pushes: list[Push], gmail: FakeGmail, oidc: FakeGoogleOIDC, cfg: Config, model: FakeOpenAI) -> dict[str, Any]:
    """The run's figures (see the module docstring)."""
    latency = [p.answered - p.sent for p in pushes if p.answered is not None]
    statuses = Counter(p.status for p in pushes)
    sends = _send_times(gmail)
    answers_per_thread = Counter(sum(status == 200 for _, status in sends.get(p.recipient, [])) - 1 for p in pushes)
    certs = [r for r in oidc.requests if r["path"] == CERTS_PATH]
    span = pushes[-1].sent - pushes[0].sent if len(pushes) > 1 else 0.0
    return {
        "what": "push POST sent -> Gmail fake receives the answer's messages.send; model latency 0 s, so this is the "
                "whole path's overhead (nothing subtracted); percentiles over the answered replies (see answered)",
        "config": {"rate": cfg.rate, "threads": len(pushes), "env": cfg.env,
                   "worker": "in-process" if cfg.in_process_worker else f"separate x{cfg.workers}",
                   "model_latency_s": 0.0, "offered_rate": round((len(pushes) - 1) / span, 2) if span else None},
        "pushes": len(pushes),
        "push_status": {str(k): v for k, v in sorted(statuses.items(), key=lambda kv: str(kv[0]))},
        "push_4xx": sum(v for k, v in statuses.items() if k is not None and 400 <= k < 500),
        "push_5xx": sum(v for k, v in statuses.items() if k is not None and k >= 500),
        "push_outcomes": dict(Counter(p.outcome for p in pushes if p.status == 200)),
        "push_response_ms": _ms([p.responded - p.sent for p in pushes if p.responded is not None], 0.5, 0.99),
        "push_to_send_ms": _ms(latency, 0.5, 0.9, 0.99),
        "stages_ms": _stages(pushes, gmail, model),
        "answered": len(latency),
        "answers_per_thread": {str(k): v for k, v in sorted(answers_per_thread.items())},
        "answered_exactly_once": answers_per_thread == Counter({1: len(pushes)}),
        "gmail_errors": sum(r["status"] >= 400 for r in gmail.requests),
        "certs_fetches": len(certs),
        "certs_fetched_once": len(certs) == 1,
        "target_p99_ms": TARGET_P99_MS,
        "target_met": bool(latency) and len(latency) == len(pushes) and pct(latency, 0.99) * 1000 <= TARGET_P99_MS,
    }



def run(cfg: Config, work: Path) -> dict[str, Any]:
    """Start Postgres, the fakes, the server (and worker), run the pushes; the figures."""
    recipients = [f"reader{i}@example.org" for i in range(cfg.count)]
    with _postgres(cfg.pg, work) as database_url, FakeOpenAI(responder=ScriptedModel()) as model, \
            FakeGoogleOIDC() as oidc, FakeGmail(oidc.email_for_access_token,
                                                scope_lookup=oidc.scopes_for_access_token) as gmail:
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
            out = figures(pushes, gmail, oidc, cfg, model)
            out["cpu_ms_per_reply"] = {k: round((cpu1[k] - cpu0[k]) / len(pushes) * 1000, 1) for k in cpu0}
            out["jobs_ms"] = _jobs(database_url, since)
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


def table(out: dict[str, Any]) -> str:
    """The figures as a short text table."""
    lat, resp = out["push_to_send_ms"], out["push_response_ms"]
    rows = [
        ("pushes (rate/s offered)", f"{out['pushes']} ({out['config']['offered_rate']})"),
        ("worker", out["config"]["worker"]),
        ("push -> send p50 / p90 / p99 / max (ms)", f"{lat['p50']} / {lat['p90']} / {lat['p99']} / {lat['max']}"),
        (f"target p99 <= {TARGET_P99_MS:g} ms", "met" if out["target_met"] else "MISSED"),
        *((f"  {k.replace('_', ' ')} p50 / p99 (ms)", f"{v['p50']} / {v['p99']}") for k, v in out["stages_ms"].items()),
        ("push response p50 / p99 / max (ms)", f"{resp['p50']} / {resp['p99']} / {resp['max']}"),
        ("CPU per reply (ms)", ", ".join(f"{k} {v}" for k, v in out.get("cpu_ms_per_reply", {}).items())),
        ("push 4xx / 5xx", f"{out['push_4xx']} / {out['push_5xx']}"),
        ("push outcomes", ", ".join(f"{k} {v}" for k, v in out["push_outcomes"].items())),
        ("answered exactly once", f"{out['answered_exactly_once']} ({out['answered']}/{out['pushes']} answered)"),
        ("Gmail fake 4xx/5xx", str(out["gmail_errors"])),
        ("certs fetched", f"{out['certs_fetches']} (Cache-Control: {out['certs_cache_control']})"),
    ]
    rows += [(f"  job {task}: n, wait p50/p99, run p50/p99 (ms)",
              f"{j['jobs']}, {j['wait_p50']} / {j['wait_p99']}, {j['run_p50']} / {j['run_p99']}")
             for task, j in out.get("jobs_ms", {}).items()]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k.ljust(width)}  {v}" for k, v in rows]
    for role, frames in (out.get("profile") or {}).items():
        lines += ["", f"{role} py-spy (share of samples):"] + [f"  {s * 100:5.1f}%  {f}" for f, s in frames]
    return "\n".join(lines)


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
