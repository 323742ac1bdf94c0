"""Opening everything the server and the worker share, once at startup, and closing it at shutdown."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from agent import db
from agent.config import Settings
from agent.google.access import GoogleAccess
from agent.keyring import load_keyring
from agent.llm import LanguageModel
from agent.users import service as users
from graphs.graph import build
from runtime import checkpoints, jobs
from runtime.services import Services

CHECKPOINT_POOL_SIZE = 5
"""Connections for checkpoints per process (part of the budget in docs/performance.md)."""


class PooledSaver(AsyncPostgresSaver):
    """The Postgres checkpointer on a pool: each operation takes its own connection, so none waits on another.

    The stock saver serialises every operation of the process behind one asyncio lock (needed on a single shared
    connection, not on a pool). Its pool is not autocommit, so a checkpoint's blobs and row, or a task's writes,
    commit together as one transaction instead of one commit per statement.
    """

    def __init__(self, pool: AsyncConnectionPool, **kw: Any) -> None:
        super().__init__(pool, **kw)
        self.lock = contextlib.nullcontext()  # type: ignore[assignment]


@asynccontextmanager
async def open_services(settings: Settings, *, migrate: bool = True) -> AsyncIterator[Services]:
    """Start the database (embedded when DATABASE_URL is unset), migrate, and open every resource."""
    conninfo, embedded = db.resolve_conninfo(settings)
    try:
        if migrate:
            await db.apply_migrations(conninfo)
        # The connection budget of a process, whatever EA_WORKER_CONCURRENCY is: a job holds a pool connection only
        # for one short database step (never across a model call) and its thread lock lives on `locks`.
        pool = db.open_pool(conninfo, max_size=settings.db_pool_size)
        saver_pool = AsyncConnectionPool(
            conninfo, min_size=1, max_size=CHECKPOINT_POOL_SIZE, open=False,
            kwargs={"autocommit": False, "prepare_threshold": 0, "row_factory": dict_row},
        )
        job_app = jobs.make_app(conninfo)
        locks = db.SessionLocks(conninfo)
        async with pool, saver_pool, job_app.open_async(), locks:
            saver = PooledSaver(saver_pool, serde=checkpoints.strict_serializer())
            graph = build().compile(checkpointer=saver, name="outreach_thread")
            local_user_id = None
            if settings.local_mode:
                async with pool.connection() as conn:
                    local_user_id = (await users.ensure_local_user(conn))["id"]
            keyring = load_keyring(settings)
            yield Services(settings=settings, pool=pool, jobs=job_app, graph=graph,
                           llm=LanguageModel(settings), local_user_id=local_user_id, keyring=keyring, locks=locks,
                           google=GoogleAccess(settings=settings, pool=pool, keyring=keyring))
    finally:
        if embedded is not None:
            embedded.stop()

