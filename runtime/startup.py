"""Opening everything the server and the worker share, once at startup, and closing it at shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

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


@asynccontextmanager
async def open_services(settings: Settings, *, migrate: bool = True) -> AsyncIterator[Services]:
    """Start the database (embedded when DATABASE_URL is unset), migrate, and open every resource."""
    conninfo, embedded = db.resolve_conninfo(settings)
    try:
        if migrate:
            await db.apply_migrations(conninfo)
        # Each running job may hold one connection for its thread lock and use another: size for that.
        pool = db.open_pool(conninfo, max_size=max(10, 2 * settings.worker_concurrency + 4))
        saver_pool = AsyncConnectionPool(
            conninfo, min_size=1, max_size=5, open=False,
            kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
        )
        job_app = jobs.make_app(conninfo)
        async with pool, saver_pool, job_app.open_async():
            saver = AsyncPostgresSaver(saver_pool, serde=checkpoints.strict_serializer())
            graph = build().compile(checkpointer=saver, name="outreach_thread")
            local_user_id = None
            if settings.local_mode:
                async with pool.connection() as conn:
                    local_user_id = (await users.ensure_local_user(conn))["id"]
            keyring = load_keyring(settings)
            yield Services(settings=settings, pool=pool, jobs=job_app, graph=graph,
                           llm=LanguageModel(settings), local_user_id=local_user_id, keyring=keyring,
                           google=GoogleAccess(settings=settings, pool=pool, keyring=keyring))
    finally:
        if embedded is not None:
            embedded.stop()
