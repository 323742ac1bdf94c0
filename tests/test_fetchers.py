"""The worker's job-fetching loops: the concurrency split, the helpers' backlog gate, one stopping stops all, and a
real worker running them all."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from runtime import defer, jobs, worker
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
        self.started.append({**options, "helper": defer.HELPER.get()})
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
    assert [(o["listen_notify"], o["helper"]) for o in jobs.started] == [(True, False)] + [(False, True)] * 3
    assert jobs.cancelled == 3, "the other loops were stopped, not left running"


async def test_helpers_query_only_while_the_first_loop_finds_jobs_back_to_back(database_url: str) -> None:
    app = jobs.make_app(database_url)
    async with app.open_async():
        manager = app.job_manager
        worker_id = await manager.register_worker()
        for i in range(3):
            await app.configure_task(defer.RESUME_THREAD).defer_async(thread_id=f"t{i}", event={})

        async def fetch(helper: bool) -> Any:
            token = defer.HELPER.set(helper)
            try:
                return await manager.fetch_job(queues=None, worker_id=worker_id)
            finally:
                defer.HELPER.reset(token)

        def todo() -> int:
            return query(database_url, "SELECT count(*) AS n FROM procrastinate_jobs WHERE status = 'todo'")[0]["n"]

        assert await fetch(helper=True) is None and todo() == 3, "no backlog yet: a helper does not even look"
        assert await fetch(helper=False) is not None and not manager.backlog, "one job is not a backlog"
        assert await fetch(helper=True) is None and todo() == 2
        assert await fetch(helper=False) is not None and manager.backlog, "two in a row are"
        assert await fetch(helper=True) is not None and todo() == 0, "in a backlog the helpers fetch"
        assert await fetch(helper=True) is None and not manager.backlog, "an empty queue ends the backlog"
        await manager.unregister_worker(worker_id)


def test_a_worker_process_runs_its_fetch_loops(database_url: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "EA_", "GOOGLE_", "DATABASE_URL"))}
    env.update(PYTHONPATH=str(ROOT), DATABASE_URL=database_url, EA_DATA_DIR=str(tmp_path / "data"),
               EA_WORKER_FETCHERS="3")
    with (tmp_path / "worker.log").open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "server.cli", "worker"], env=env, cwd=tmp_path, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        # each loop registers as a procrastinate worker (heartbeats); only the first LISTENs
        wait_until(lambda: query(database_url, "SELECT count(*) AS n FROM procrastinate_workers")[0]["n"] == 3,
                   what="three registered workers", timeout=60)
        wait_until(lambda: query(database_url, "SELECT count(*) AS n FROM pg_stat_activity WHERE datname ="
                                 " current_database() AND query ILIKE 'LISTEN %%'")[0]["n"] == 1,
                   what="one LISTEN connection", timeout=30)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert proc.returncode == 0, (tmp_path / "worker.log").read_text()[-2000:]
    wait_until(lambda: query(database_url, "SELECT count(*) AS n FROM procrastinate_workers")[0]["n"] == 0,
               what="the loops unregistered on a graceful stop", timeout=10)
