"""Core benchmark: startup, first email and reply→answer latency, memory, and the dispatcher at depth.

Run: `.venv/bin/python -m bench.core [--threads 50]` — writes docs/bench-core.md. Uses an embedded PostgreSQL,
a real `email-assistant serve` process and the local OpenAI wire fake (so model time is ~0: this measures us).
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import random
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psutil
import psycopg

from agent import db
from tests.fakes.openai_fake import FakeOpenAI
from tests.fakes.scripted_model import ScriptedModel
from tests.support import ServerProcess, wait_until

OUT = Path(__file__).resolve().parent.parent / "docs" / "bench-core.md"


def pct(values: list[float], q: float) -> float:
    """The q-th percentile in milliseconds."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def measure_server(admin: str, threads: int, work: Path) -> dict[str, float]:
    """Latencies and memory of a real server process on a fresh database."""
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = psycopg.conninfo.make_conninfo(admin, dbname=name)
    with FakeOpenAI(responder=ScriptedModel()) as fake:
        env = {"DATABASE_URL": url, "EA_DATA_DIR": str(work / "data"), "OPENAI_API_KEY": "k",
               "OPENAI_BASE_URL": fake.base_url, "EA_LLM_MAX_RETRIES": "0", "EA_JOB_POLL_SECONDS": "0.5"}
        server = ServerProcess(env, log_path=work / "server.log")
        t0 = time.perf_counter()
        server.start()
        cold = time.perf_counter() - t0
        server.stop()
        t0 = time.perf_counter()
        server.start()
        warm = time.perf_counter() - t0
        try:
            persona = server.create_assistant(autonomy="autonomous")
            starts, ids = {}, []
            for i in range(threads):
                starts[(tid := server.create_thread(persona["id"], f"lead{i}@example.com")["id"])] = time.perf_counter()
                ids.append(tid)
            first: dict[str, float] = {}
            deadline = time.perf_counter() + 300
            while len(first) < len(ids) and time.perf_counter() < deadline:
                for tid in ids:
                    if tid not in first and server.thread(tid)["status"] == "waiting":
                        first[tid] = time.perf_counter()
                time.sleep(0.05)
            assert len(first) == len(ids), "not every first email went out"
            first_latency = [first[t] - starts[t] for t in ids]
            answer_latency = []
            for tid in ids:
                t0 = time.perf_counter()
                server.post(f"/api/threads/{tid}/sandbox-reply", json={"text": "Interested - what does it cost?"})
                wait_until(lambda tid=tid: len(server.thread(tid)["messages"]) == 3, timeout=60, what="answer")
                answer_latency.append(time.perf_counter() - t0)
            rss = psutil.Process(server.proc.pid).memory_info().rss / 2**20
            t0 = time.perf_counter()
            for _ in range(50):
                server.client.get("/api/threads", params={"limit": 50})
            list_ms = (time.perf_counter() - t0) / 50 * 1000
        finally:
            server.stop()
    return {"cold": cold, "warm": warm, "first_p50": pct(first_latency, 0.5), "first_p95": pct(first_latency, 0.95),
            "answer_p50": pct(answer_latency, 0.5), "answer_p95": pct(answer_latency, 0.95), "rss": rss,
            "list_ms": list_ms}


async def measure_dispatcher(admin: str, depth: int) -> float:
    """Milliseconds for one dispatcher pass with `depth` emails queued (it plans the first 500)."""
    from agent.sending import queue

    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = psycopg.conninfo.make_conninfo(admin, dbname=name)
    await db.apply_migrations(url)
    async with await psycopg.AsyncConnection.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        user = (await (await conn.execute("INSERT INTO users (email) VALUES ('b@gmail.com') RETURNING id")).fetchone())["id"]
        persona = (await (await conn.execute(
            "INSERT INTO assistants (user_id, name, sender_name, offer, goal) VALUES (%s,'a','b','c','d') RETURNING id",
            (user,))).fetchone())["id"]
        await conn.execute(
            "INSERT INTO threads (user_id, assistant_id, recipient_email, transport, status)"
            " SELECT %s, %s, 'r' || g || '@x.io', 'gmail', 'active' FROM generate_series(1, %s) g", (user, persona, depth))
        await conn.execute(
            "INSERT INTO send_queue (thread_id, step, user_id, kind, priority, wait_id)"
            " SELECT id, 1, user_id, 'first', 2, 'send_slot-1' FROM threads")
        await conn.commit()
        t0 = time.perf_counter()
        runs = 5
        for _ in range(runs):
            await queue.dispatch_once(conn, user_id=user, now=datetime(2026, 11, 30, 6, tzinfo=UTC),
                                      rng=random.Random(1))
            await conn.rollback()
        return (time.perf_counter() - t0) / runs * 1000


def main() -> None:
    """Run everything and write the report."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=50)
    args = parser.parse_args()
    import pgserver

    base = Path(tempfile.mkdtemp(prefix="ea-bench-"))
    base.chmod(0o755)
    pg = pgserver.get_server(base / "pg", cleanup_mode="delete")
    try:
        server = measure_server(pg.get_uri(), args.threads, base)
        dispatch = {n: asyncio.run(measure_dispatcher(pg.get_uri(), n)) for n in (100, 1000, 10000)}
    finally:
        pg.cleanup()
        shutil.rmtree(base, ignore_errors=True)
    lines = [
        "# Core benchmark", "",
        f"`python -m bench.core --threads {args.threads}` on {platform.machine()}, {psutil.cpu_count()} cores, "
        f"Python {platform.python_version()}, embedded PostgreSQL, the local model fake (model time ≈ 0), "
        f"{datetime.now(UTC):%Y-%m-%d}.", "",
        "| measure | value |", "|---|---|",
        f"| server start to /readyz, fresh database (migrations) | {server['cold']:.2f} s |",
        f"| server start to /readyz, restart | {server['warm']:.2f} s |",
        f"| thread created → first email sent, p50 / p95 ({args.threads} at once) | "
        f"{server['first_p50']:.0f} / {server['first_p95']:.0f} ms |",
        f"| reply posted → answer sent, p50 / p95 (one at a time) | "
        f"{server['answer_p50']:.0f} / {server['answer_p95']:.0f} ms |",
        f"| GET /api/threads?limit=50, mean | {server['list_ms']:.1f} ms |",
        f"| server process memory (RSS) after the run | {server['rss']:.0f} MiB |",
        *[f"| dispatcher pass with {n} queued emails | {ms:.1f} ms |" for n, ms in dispatch.items()],
        "", "Latencies include the worker noticing the job (LISTEN/NOTIFY) and the test client polling every 0.1 s.",
    ]
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
