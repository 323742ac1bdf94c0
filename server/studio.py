"""The LangGraph dev server's hooks for `email-assistant studio`: writes refused, the real threads listed.

Loaded by langgraph-api from the paths the studio command passes (auth and http app); needs the `studio` extra.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID, uuid5

import psycopg
from langgraph_sdk import Auth
from psycopg.rows import dict_row
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from runtime.studio import GRAPH_ID, READ_ONLY, REFUSED, studio_conninfo, thread_rows

log = logging.getLogger(__name__)
SYNC_SECONDS = 5.0
# langgraph-api names the assistant it creates for a graph uuid5(NAMESPACE_GRAPH, graph_id); Studio lists a graph's
# threads by that assistant id in their metadata.
NAMESPACE_GRAPH = UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")
STUDIO_ASSISTANT = str(uuid5(NAMESPACE_GRAPH, GRAPH_ID))

auth = Auth()


@auth.authenticate
async def authenticate(headers: dict[bytes, bytes]) -> dict[str, Any]:
    """The dev server listens on loopback only: whoever reaches it is the local operator."""
    return {"identity": "studio", "is_authenticated": True, "permissions": ["read"]}


def _refuse(what: str) -> Auth.exceptions.HTTPException:
    return Auth.exceptions.HTTPException(status_code=403, detail=f"{what} refused. {REFUSED}")


@auth.on.threads.create_run
async def refuse_runs(ctx: Auth.types.AuthContext, value: Any) -> None:
    """No runs from Studio."""
    raise _refuse("Running the graph from Studio is")


@auth.on.threads.update
async def refuse_edits(ctx: Auth.types.AuthContext, value: Any) -> None:
    """No state edits (or metadata edits) from Studio."""
    raise _refuse("Editing a thread from Studio is")


@auth.on.threads.create
async def refuse_new_threads(ctx: Auth.types.AuthContext, value: Any) -> None:
    """Threads are started from the dashboard or the API, where recipients and limits are checked."""
    raise _refuse("Creating a thread from Studio is")


@auth.on.threads.delete
async def refuse_deletes(ctx: Auth.types.AuthContext, value: Any) -> None:
    """History is kept: the audit trail must not lose a thread."""
    raise _refuse("Deleting a thread from Studio is")


@auth.on.crons
async def refuse_crons(ctx: Auth.types.AuthContext, value: Any) -> None:
    """Scheduled runs would bypass the outbox like any run."""
    raise _refuse("Scheduling runs from Studio is")


def metadata(row: dict[str, Any]) -> dict[str, Any]:
    """The thread metadata Studio shows and filters on."""
    return {"graph_id": GRAPH_ID, "assistant_id": STUDIO_ASSISTANT, "recipient": row["recipient_email"],
            "recipient_name": row["recipient_name"], "assistant": row["persona"], "persona_id": str(row["persona_id"]),
            "status": row["status"], "close_reason": row["close_reason"], "updated_at": row["updated_at"].isoformat()}


async def sync_threads() -> int:
    """Register every real thread (and its current metadata) in the dev server's thread index; returns the count."""
    from langgraph_runtime.database import connect
    from langgraph_runtime.ops import Threads

    async with await psycopg.AsyncConnection.connect(studio_conninfo(), row_factory=dict_row, autocommit=True,
                                                     options=READ_ONLY) as conn:
        rows = await thread_rows(conn)
    async with connect() as store:
        for row in rows:
            async for _created in await Threads.put(store, row["id"], metadata=metadata(row), if_exists="do_nothing"):
                pass
            async for _patched in await Threads.patch(store, row["id"], metadata=metadata(row)):
                pass
    return len(rows)


async def _keep_in_sync() -> None:
    while True:
        await asyncio.sleep(SYNC_SECONDS)
        try:
            await sync_threads()
        except (psycopg.Error, OSError):
            log.warning("Studio: could not refresh the thread list from the database; retrying", exc_info=True)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    """List the real threads before the first request, then refresh them every few seconds."""
    count = await sync_threads()
    log.info("Studio shows %d thread(s) from the project's database (read-only)", count)
    task = asyncio.create_task(_keep_in_sync())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def about(request: Request) -> JSONResponse:
    """What this dev server is."""
    return JSONResponse({"graph": GRAPH_ID, "read_only": True, "why": REFUSED})


app = Starlette(routes=[Route("/ea/studio", about)], lifespan=lifespan)
