"""Helpers shared by nodes: loading the thread, recording events, waiting."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from langgraph.runtime import Runtime
from langgraph.types import interrupt
from psycopg import AsyncConnection

from agent.assistants import service as assistants
from agent.assistants.models import Assistant
from agent.events import service as events
from agent.threads import messages
from agent.threads import service as threads
from graphs.context import Context
from graphs.state import ThreadState

WAIT_STATUS = {"reply": "waiting", "approval": "awaiting_approval", "human": "needs_human", "send_slot": "active"}


def thread_uuid(state: ThreadState) -> UUID:
    """The thread's id as a UUID."""
    return UUID(state["thread_id"])


async def load(runtime: Runtime[Context], state: ThreadState) -> tuple[dict[str, Any], Assistant]:
    """The thread row and its persona."""
    async with runtime.context.pool.connection() as conn:
        thread = await threads.get_any(conn, thread_id=thread_uuid(state))
        persona = await assistants.get(conn, user_id=thread["user_id"], assistant_id=thread["assistant_id"])
    return thread, persona


async def record(runtime: Runtime[Context], state: ThreadState, kind: str, summary: str, **kw: Any) -> None:
    """Append an event to the thread's audit trail."""
    async with runtime.context.pool.connection() as conn:
        thread = await threads.get_any(conn, thread_id=thread_uuid(state))
        await events.record(conn, user_id=thread["user_id"], thread_id=thread["id"], kind=kind, summary=summary, **kw)


async def conversation(runtime: Runtime[Context], thread: dict[str, Any]) -> list[dict[str, Any]]:
    """The thread's emails for a prompt, oldest first (new text only for inbound)."""
    async with runtime.context.pool.connection() as conn:
        rows = await messages.list_for_thread(conn, user_id=thread["user_id"], thread_id=thread["id"])
    return [{"direction": r["direction"], "text": r["text"], "at": r["at"].strftime("%Y-%m-%d %H:%M")} for r in rows]


def recipient(thread: dict[str, Any]) -> dict[str, str]:
    """The recipient fields a prompt may use."""
    return {"email": thread["recipient_email"], "name": thread["recipient_name"],
            "company": thread["recipient_company"], "context": thread["context"]}


def with_signature(body: str, persona: Assistant) -> str:
    """The body as sent: the persona's signature is appended by code, never by the model."""
    body = body.strip()
    return f"{body}\n\n{persona.signature.strip()}" if persona.signature.strip() else body


async def wait_for(
    runtime: Runtime[Context],
    state: ThreadState,
    *,
    kind: str,
    payload: dict[str, Any],
    enter: Callable[[AsyncConnection, str], Awaitable[None]] | None = None,
    entered: Callable[[], Awaitable[None]] | None = None,
) -> tuple[dict[str, Any], int]:
    """Interrupt until an event answers this wait; the entry work runs once (committed, then `entered`)."""
    seq = state.get("wait_seq", 0) + 1
    wait_id = f"{kind}-{seq}"
    async with runtime.context.pool.connection() as conn:
        thread = await threads.get_any(conn, thread_id=thread_uuid(state))
        first_time = thread["wait_id"] != wait_id
        if first_time:
            # A pause or stop that lands meanwhile keeps its status (conditional in SQL, not read-then-write).
            await conn.execute(
                "UPDATE threads SET wait_id = %s, wait_kind = %s, updated_at = now(), status = CASE WHEN status"
                " IN ('paused', 'closed') THEN status ELSE %s END WHERE id = %s",
                (wait_id, kind, WAIT_STATUS[kind], thread["id"]))
            if enter is not None:
                await enter(conn, wait_id)
    if first_time and entered is not None:
        await entered()
    event = interrupt({"wait_id": wait_id, "kind": kind, **payload})
    return dict(event), seq
