"""LangGraph Studio on the real conversations: the graph as Studio sees it, a read-only checkpointer, thread rows.

`email-assistant studio` (server/cli.py) runs LangGraph's dev server with these. Studio reads the project's own
checkpoints; it never writes them: runs and state edits would bypass the outbox and the per-thread locks.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from typing_extensions import TypedDict

from graphs.graph import build

CONNINFO_ENV = "EA_STUDIO_CONNINFO"
GRAPH_ID = "outreach_thread"
REFUSED = ("Email Assistant threads are read-only in Studio: a run or a state edit from here would bypass the "
           "outbox (exactly-once sending) and the per-thread locks. Act on a thread from the dashboard or the API "
           "(approve, reply, take over, resume).")
# Every connection Studio opens refuses writes at the database too.
READ_ONLY = "-c default_transaction_read_only=on"


class StudioReadOnly(PermissionError):
    """Studio tried to write a checkpoint."""


class StudioContext(TypedDict, total=False):
    """What a run would be given (a pool, the model, the transport): supplied by the worker, never by Studio."""


def graph(config: Any = None) -> Any:
    """The thread graph for the dev server: the real nodes and state, with a context schema Studio can draw."""
    builder = build()
    builder.context_schema = StudioContext  # the real Context holds a pool and clients: not a JSON schema
    return builder.compile(name=GRAPH_ID)


class ReadOnlyCheckpointer(AsyncPostgresSaver):
    """The project's Postgres checkpoints, read-only: every write raises StudioReadOnly."""

    async def aput(self, *args: Any, **kwargs: Any) -> Any:
        """Refused."""
        raise StudioReadOnly(REFUSED)

    async def aput_writes(self, *args: Any, **kwargs: Any) -> None:
        """Refused."""
        raise StudioReadOnly(REFUSED)

    async def adelete_thread(self, thread_id: str) -> None:
        """Refused."""
        raise StudioReadOnly(REFUSED)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Refused."""
        raise StudioReadOnly(REFUSED)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Refused."""
        raise StudioReadOnly(REFUSED)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Refused."""
        raise StudioReadOnly(REFUSED)


def studio_conninfo() -> str:
    """The database the studio command resolved (embedded or DATABASE_URL), handed over in the environment.

    A bare `langgraph dev` on langgraph.json uses DATABASE_URL.
    """
    conninfo = os.environ.get(CONNINFO_ENV) or os.environ.get("DATABASE_URL")
    if not conninfo:
        raise RuntimeError(f"{CONNINFO_ENV} is unset: start Studio with `email-assistant studio`.")
    return conninfo


@asynccontextmanager
async def checkpointer() -> AsyncIterator[ReadOnlyCheckpointer]:
    """The dev server's checkpointer (entered once per event loop)."""
    pool = AsyncConnectionPool(studio_conninfo(), min_size=1, max_size=4, open=False, kwargs={
        "autocommit": True, "prepare_threshold": 0, "row_factory": dict_row, "options": READ_ONLY})
    async with pool:
        yield ReadOnlyCheckpointer(pool)


async def thread_rows(conn: Any) -> list[dict[str, Any]]:
    """Every thread with what Studio shows as its metadata: recipient, assistant (persona) and status."""
    cur = await conn.execute(
        "SELECT t.id, t.recipient_email, t.recipient_name, t.status, t.close_reason, t.created_at, t.updated_at,"
        " a.id AS persona_id, a.name AS persona FROM threads t JOIN assistants a ON a.id = t.assistant_id"
        " ORDER BY t.created_at")
    return list(await cur.fetchall())
