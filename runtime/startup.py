"""Opening everything the server and the worker share, once at startup, and closing it at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from agent import db
from agent.config import Settings
from agent.google.access import GoogleAccess
from agent.keyring import load_keyring
from agent.llm import LanguageModel
from agent.users import service as users
from runtime import jobs
from runtime.services import Services

log = logging.getLogger(__name__)
CHECKPOINT_POOL_SIZE = 5
"""Connections for checkpoints per process (part of the budget in docs/performance.md)."""


def pooled_saver(pool: AsyncConnectionPool) -> Any:
    """The Postgres checkpointer on a pool: each operation takes its own connection, so none waits on another.

    The stock saver serialises every operation of the process behind one asyncio lock (needed on a single shared
    connection, not on a pool). Its pool is not autocommit, so a checkpoint's blobs and row, or a task's writes,
    commit together as one transaction instead of one commit per statement.
    """
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    from runtime import checkpoints

    class Saver(checkpoints.ReadOnce, AsyncPostgresSaver):
        """The pooled saver that reads a run's latest checkpoint once."""

    saver = Saver(pool, serde=checkpoints.strict_serializer())
    saver.lock = contextlib.nullcontext()  # type: ignore[assignment]
    return saver


class LazyGraph:
    """The compiled thread graph, built (LangGraph imported) on first use: readiness does not wait for it."""

    def __init__(self, saver_pool: AsyncConnectionPool) -> None:
        self._saver_pool = saver_pool
        self._graph: Any = None

    @staticmethod
    def load() -> None:
        """Import LangGraph and the graph's modules (thread-safe; the background warm-up runs it)."""
        import langgraph.checkpoint.postgres.aio  # noqa: F401

        import graphs.graph  # noqa: F401

    def compiled(self) -> Any:
        """The graph, compiled with the pooled checkpointer (once per process, on the event loop)."""
        if self._graph is None:
            from graphs.graph import build

            self._graph = build().compile(checkpointer=pooled_saver(self._saver_pool), name="outreach_thread")
        return self._graph

    def __getattr__(self, name: str) -> Any:
        return getattr(self.compiled(), name)


async def together(*steps: Awaitable[Any]) -> None:
    """Run the steps at the same time; the first failure is raised as itself once the others have stopped."""
    tasks = [asyncio.ensure_future(step) for step in steps]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        for outcome in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(outcome, Exception):
                log.debug("a start-up step also failed: %r", outcome)
        raise


@asynccontextmanager
async def open_services(settings: Settings, *, migrate: bool = True) -> AsyncIterator[Services]:
    """Start the database (embedded when DATABASE_URL is unset), migrate, and open every resource."""
    conninfo, embedded = db.resolve_conninfo(settings)
    try:
        # The connection budget of a process, whatever EA_WORKER_CONCURRENCY is: a job holds a pool connection only
        # for one short database step (never across a model call) and its thread lock lives on `locks`.
        pool = db.open_pool(conninfo, max_size=settings.db_pool_size)
        saver_pool = AsyncConnectionPool(
            conninfo, min_size=1, max_size=CHECKPOINT_POOL_SIZE, open=False,
            kwargs={"autocommit": False, "prepare_threshold": 0, "row_factory": dict_row},
        )
        job_app = jobs.make_app(conninfo)
        locks = db.SessionLocks(conninfo)
        async with contextlib.AsyncExitStack() as stack:
            # Connecting needs no schema: the migrations' check, procrastinate's pool and the lock connection (each
            # waits for its first connection) run at the same time; the pools connect in the background.
            await stack.enter_async_context(pool)
            await stack.enter_async_context(saver_pool)
            await together(db.apply_migrations(conninfo) if migrate else asyncio.sleep(0),
                           stack.enter_async_context(job_app.open_async()), stack.enter_async_context(locks))
            graph = LazyGraph(saver_pool)
            # Loaded in the background once serving: the first run rarely waits, and readiness never does.
            warm = asyncio.get_running_loop().run_in_executor(None, LazyGraph.load)
            local_user_id = None
            if settings.local_mode:
                async with pool.connection() as conn:
                    local_user_id = (await users.ensure_local_user(conn))["id"]
            keyring = load_keyring(settings)
            try:
                yield Services(settings=settings, pool=pool, jobs=job_app, graph=graph,
                               llm=LanguageModel(settings), local_user_id=local_user_id, keyring=keyring, locks=locks,
                               google=GoogleAccess(settings=settings, pool=pool, keyring=keyring))
            finally:
                await warm  # a failed build surfaces here too (and on first use)
    finally:
        if embedded is not None:
            embedded.stop()
