"""The worker's job-fetching loops: the concurrency split, one stopping stops all, and a real worker runs them all."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from runtime import worker
from tests.support import query, wait_until

ROOT = Path(__file__).resolve().parent.parent


def test_the_concurrency_is_shared_and_never_exceeded() -> None:
    assert worker.shares(256, 4) == [64, 64, 64, 64]
    assert worker.shares(10, 4) == [3, 3, 2, 2]
    assert worker.shares(2, 4) == [1, 1], "never more loops than jobs at once"
    assert worker.shares(1, 1) == [1]
    for concurrency in range(1, 40):
        for fetchers in range(1, 17):
            split = worker.shares(concurrency, fetchers)
            assert sum(split) == concurrency and min(split) >= 1 and len(split) <= fetchers


class Jobs:
    """Stands in for procrastinate's App: the first loop fails after a moment, the others run until cancelled."""

    def __init__(self) -> None:
        self.started: list[dict[str, Any]] = []
        self.cancelled = 0

    async def run_worker_async(self, **options: Any) -> None:
        self.started.append(options)
        if len(self.started) == 1:
            await asyncio.sleep(0.05)
            raise RuntimeError("listener lost")
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise


async def test_when_one_loop_stops_by_itself_the_others_stop_and_its_error_is_raised() -> None:
    jobs = Jobs()
    services = SimpleNamespace(jobs=jobs, settings=SimpleNamespace(worker_concurrency=8, worker_fetchers=4,
                                                                   job_poll_seconds=5.0))
    with pytest.raises(RuntimeError, match="listener lost"):
        await asyncio.wait_for(worker._run_fetchers(services, name="w"), timeout=10)
    assert [o["name"] for o in jobs.started] == ["w", "w.1", "w.2", "w.3"]
    assert [o["concurrency"] for o in jobs.started] == [2, 2, 2, 2]
    assert jobs.cancelled == 3, "the other loops were stopped, not left running"


def test_a_worker_process_runs_its_fetch_loops(database_url: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "EA_", "GOOGLE_", "DATABASE_URL"))}
    env.update(PYTHONPATH=str(ROOT), DATABASE_URL=database_url, EA_DATA_DIR=str(tmp_path / "data"),
               EA_WORKER_FETCHERS="3")
    with (tmp_path / "worker.log").open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "server.cli", "worker"], env=env, cwd=tmp_path, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        # each loop registers as a procrastinate worker (heartbeats) and LISTENs on a connection of its own
        wait_until(lambda: query(database_url, "SELECT count(*) AS n FROM procrastinate_workers")[0]["n"] == 3,
                   what="three registered workers", timeout=60)
        wait_until(lambda: query(database_url, "SELECT count(*) AS n FROM pg_stat_activity WHERE datname ="
                                 " current_database() AND query ILIKE 'LISTEN %%'")[0]["n"] == 3,
                   what="three LISTEN connections", timeout=30)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert proc.returncode == 0, (tmp_path / "worker.log").read_text()[-2000:]
    wait_until(lambda: query(database_url, "SELECT count(*) AS n FROM procrastinate_workers")[0]["n"] == 0,
               what="the loops unregistered on a graceful stop", timeout=10)
