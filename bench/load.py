"""Load run: many threads in flight, replies at a steady rate for minutes; no error, memory flat, the queue drains.

Run: `.venv/bin/python -m bench.load` (1,000 threads, 2 replies/s for 3 minutes; 15-20 minutes on 2 cores) —
writes docs/bench-load.md. `--quick` is the short version CI runs through tests/test_load.py. Everything is on
this machine: an embedded PostgreSQL, a real `email-assistant serve` process (sandbox mode, in-process worker,
or `--workers N` separate `email-assistant worker` processes) and the local OpenAI wire fake.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil
import psycopg
from psycopg.rows import dict_row

from agent.threads.lifecycle import Status
from tests.fakes.openai_fake import FakeOpenAI
from tests.fakes.scripted_model import ScriptedModel
from tests.support import ALWAYS_OPEN, ServerProcess, wait_until

OUT = Path(__file__).resolve().parent.parent / "docs" / "bench-load.md"
POSTERS = 8
"""Replies in flight at once from the driver."""
DRAIN_STALL_SECONDS = 120
"""The queue has not drained when its backlog stops shrinking for this long."""
REPLIES = ("What does it cost?", "Does it work with Google Calendar?", "Can my team try it first?",
           "How long does setup take?", "Is there a discount for clinics?")


@dataclass
class LoadResult:
    """What one load run saw."""

    threads: int
    rate: float
    seconds: float
    workers: int
    replies_sent: int = 0
    http_errors: int = 0
    replies_undecided: int = 0
    parked_threads: int = 0
    error_log_lines: int = 0
    post_seconds: float = 0.0
    drain_seconds: float = 0.0
    decided_per_second: float = 0.0
    """Replies posted over the time from the first reply to an empty queue: what the system kept up with."""
    drained: bool = False
    rss_mib: list[float] = field(default_factory=list)
    answers: int = 0
    leftover: list[str] = field(default_factory=list)
    """What was still pending when the drain timed out (task, status, count)."""

    @property
    def rss_growth_mib(self) -> float:
        """RSS at the end minus RSS after the warm-up quarter of the run."""
        if len(self.rss_mib) < 4:
            return 0.0
        return self.rss_mib[-1] - self.rss_mib[len(self.rss_mib) // 4]


def _rows(url: str, sql: str, params: tuple = ()) -> list[dict]:
    with psycopg.connect(url, row_factory=dict_row, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def _pending_work(url: str) -> int:
    """Replies not yet decided plus jobs that should run now."""
    undecided = _rows(url, "SELECT count(*) AS n FROM messages WHERE direction = 'in' AND processed_at IS NULL")[0]["n"]
    return undecided + sum(n for _task, _status, n in _runnable(url))


def _runnable(url: str) -> list[tuple[str, str, int]]:
    """Thread, queue and sync jobs running or due now (the periodic sweeps and digest are not the queue)."""
    rows = _rows(url, "SELECT task_name, status, count(*) AS n FROM procrastinate_jobs"
                      " WHERE (status = 'doing' OR (status = 'todo' AND (scheduled_at IS NULL OR scheduled_at <= now())))"
                      " AND task_name NOT IN ('ea:sweep', 'ea:timers', 'ea:prune_jobs', 'ea:dispatch_sweep', 'ea:digest',"
                      " 'ea:renew_watches')"
                      " GROUP BY task_name, status")
    return [(r["task_name"], r["status"], r["n"]) for r in rows]


def run_load(url: str, work: Path, *, threads: int, rate: float, seconds: float, workers: int = 0) -> LoadResult:
    """Start the server (and workers), put `threads` in flight, reply at `rate` per second for `seconds`."""
    result = LoadResult(threads=threads, rate=rate, seconds=seconds, workers=workers)
    with FakeOpenAI(responder=ScriptedModel()) as fake:
        env = {"DATABASE_URL": url, "EA_DATA_DIR": str(work / "data"), "OPENAI_API_KEY": "k",
               "OPENAI_BASE_URL": fake.base_url, "EA_LLM_MAX_RETRIES": "0", "EA_JOB_POLL_SECONDS": "1",
               "EA_WORKER_IN_PROCESS": "false" if workers else "true"}
        server = ServerProcess(env, log_path=work / "server.log")
        server.start(ready_seconds=300)  # imports alone take a minute when the shared machine is busy
        procs = [subprocess.Popen([str(Path(sys.executable).with_name("email-assistant")), "worker"],
                                  env={**psutil.Process().environ(), **env},
                                  stdout=(work / f"worker{i}.log").open("wb"), stderr=subprocess.STDOUT)
                 for i in range(workers)]
        watched = [psutil.Process(server.proc.pid), *(psutil.Process(p.pid) for p in procs)]
        try:
            persona = server.create_assistant(autonomy="autonomous", max_replies=50, **ALWAYS_OPEN)
            ids: list[str] = []
            for start in range(0, threads, 100):
                batch = [{"email": f"lead{i}@load.example"} for i in range(start, min(threads, start + 100))]
                r = server.client.post("/api/threads/bulk", json={"assistant_id": persona["id"], "recipients": batch},
                                       timeout=300)
                assert r.status_code == 201, r.text
                ids += r.json()["created"]
            wait_until(lambda: _rows(url, "SELECT count(*) AS n FROM threads WHERE status = %s",
                                     (Status.waiting.value,))[0]["n"] == threads,
                       timeout=max(120, threads * 3), what="every first email sent")
            rng = random.Random(7)
            t0 = time.monotonic()
            next_sample = t0
            # Replies go out on a small pool, so the posted rate stays steady however slow one request is.
            with ThreadPoolExecutor(max_workers=POSTERS) as pool:
                posts: list[Future[int]] = []
                while (now := time.monotonic()) - t0 < seconds:
                    if now >= next_sample:
                        result.rss_mib.append(sum(p.memory_info().rss for p in watched) / 2**20)
                        next_sample += max(1.0, seconds / 20)
                    for _ in range(max(0, int((now - t0) * rate) - len(posts))):
                        posts.append(pool.submit(_post_reply, server, rng.choice(ids), rng.choice(REPLIES)))
                    time.sleep(0.02)
                result.post_seconds = time.monotonic() - t0
            result.replies_sent = len(posts)
            result.http_errors = sum(f.result() not in (200, 201, 202, 409) for f in posts)
            t1 = time.monotonic()
            result.drained, result.leftover = _drain(url, stall_seconds=DRAIN_STALL_SECONDS)
            result.drain_seconds = time.monotonic() - t1
            result.decided_per_second = result.replies_sent / max(1e-9, time.monotonic() - t0)
            result.rss_mib.append(sum(p.memory_info().rss for p in watched) / 2**20)
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(timeout=30)
            server.stop()
    result.replies_undecided = _rows(url, "SELECT count(*) AS n FROM messages WHERE direction = 'in'"
                                          " AND processed_at IS NULL")[0]["n"]
    result.parked_threads = _rows(url, "SELECT count(*) AS n FROM threads WHERE park_reason IS NOT NULL")[0]["n"]
    result.answers = _rows(url, "SELECT count(*) AS n FROM outbox WHERE kind = 'reply' AND status = 'sent'")[0]["n"]
    logs = [(work / "server.log"), *(work / f"worker{i}.log" for i in range(workers))]
    result.error_log_lines = sum(line.count(" ERROR ") + line.count("Traceback") for f in logs
                                 for line in f.read_text(errors="replace").splitlines())
    return result


def _post_reply(server: ServerProcess, thread_id: str, text: str) -> int:
    """One sandbox reply; its status code (0 when the request itself failed)."""
    try:
        return server.post(f"/api/threads/{thread_id}/sandbox-reply", json={"text": text}, timeout=60).status_code
    except httpx.HTTPError:
        return 0


def _drain(url: str, *, stall_seconds: float) -> tuple[bool, list[str]]:
    """Wait until no work is left; give up only when the backlog stops shrinking for stall_seconds."""
    best, best_at = _pending_work(url), time.monotonic()
    while best:
        time.sleep(1)
        left = _pending_work(url)
        if left < best:
            best, best_at = left, time.monotonic()
        elif time.monotonic() - best_at > stall_seconds:
            return False, [f"{task} {status}: {n}" for task, status, n in _runnable(url)]
    return True, []


def fresh_database(admin: str) -> str:
    """A new empty database on the admin server."""
    name = f"load_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return psycopg.conninfo.make_conninfo(admin, dbname=name)


def report(result: LoadResult) -> str:
    """The markdown report of one run."""
    return "\n".join([
        "# Load run", "",
        f"`python -m bench.load --threads {result.threads} --rate {result.rate:g} --seconds {result.seconds:g}"
        f" --workers {result.workers}` on {platform.machine()}, {psutil.cpu_count()} cores, Python "
        f"{platform.python_version()}, embedded PostgreSQL, the local model fake, {datetime.now(UTC):%Y-%m-%d}.", "",
        "| measure | value |", "|---|---|",
        f"| threads in flight | {result.threads} |",
        f"| replies posted (steady rate) | {result.replies_sent} at {result.rate:g}/s for {result.seconds:g} s"
        f" (the last answered by the server after {result.post_seconds:.0f} s) |",
        f"| answers sent | {result.answers} |",
        f"| HTTP errors (5xx or unexpected) | {result.http_errors} |",
        f"| ERROR lines / tracebacks in the logs | {result.error_log_lines} |",
        f"| replies left undecided | {result.replies_undecided} |",
        f"| threads parked by a failure | {result.parked_threads} |",
        f"| queue drained after the last reply | {'yes' if result.drained else 'NO'}, in {result.drain_seconds:.1f} s |",
        f"| replies decided per second, first reply to empty queue | {result.decided_per_second:.2f} |",
        f"| RSS (server + workers), after warm-up → end | {result.rss_mib[len(result.rss_mib) // 4]:.0f} → "
        f"{result.rss_mib[-1]:.0f} MiB ({result.rss_growth_mib:+.0f} MiB) |",
        "", "RSS samples (MiB): " + ", ".join(f"{v:.0f}" for v in result.rss_mib), "",
        *([f"Still pending when the drain timed out: {'; '.join(result.leftover)}.", ""] if result.leftover else []),
    ])


def main() -> None:
    """Run the load and write the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=2.0, help="replies per second")
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--workers", type=int, default=0, help="separate worker processes (0: in-process)")
    parser.add_argument("--quick", action="store_true", help="100 threads, 30 s (what CI runs)")
    args = parser.parse_args()
    if args.quick:
        args.threads, args.seconds = 100, 30.0
    import pgserver

    base = Path(tempfile.mkdtemp(prefix="ea-load-"))
    base.chmod(0o755)
    pg = pgserver.get_server(base / "pg", cleanup_mode="delete")
    try:
        result = run_load(fresh_database(pg.get_uri()), base, threads=args.threads, rate=args.rate,
                          seconds=args.seconds, workers=args.workers)
    finally:
        pg.cleanup()
        shutil.rmtree(base, ignore_errors=True)
    text = report(result)
    OUT.write_text(text, encoding="utf-8")
    sys.stdout.write(text + json.dumps(asdict(result)) + "\n")


if __name__ == "__main__":
    main()
