"""Helpers shared by nodes: loading the thread, recording events, waiting."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from uuid import UUID

from psycopg import AsyncConnection

from agent.assistants import service as assistants
from agent.assistants.models import Assistant
from agent.events import service as events
from agent.threads import lifecycle, messages
from agent.threads import service as threads
from agent.threads.lifecycle import EventType, WaitKind
from agent.threads.models import ThreadRow
from graphs.context import Context
from graphs.state import ThreadState

if TYPE_CHECKING:  # LangGraph loads with the graph, not with the helpers the server uses (runtime.preview)
    from langgraph.runtime import Runtime


def thread_uuid(state: ThreadState) -> UUID:
    """The thread's id as a UUID."""
    return UUID(state["thread_id"])


async def load(runtime: Runtime[Context], state: ThreadState) -> tuple[ThreadRow, Assistant]:
    """The thread row and its persona, as read when the run started (read here only if the runner did not)."""
    rows = runtime.context.rows
    if rows.thread is None or rows.persona is None:
        async with runtime.context.pool.connection() as conn:
            rows.thread = await threads.get_any(conn, thread_id=thread_uuid(state))
            rows.persona = await assistants.get(conn, user_id=rows.thread.user_id,
                                                assistant_id=rows.thread.assistant_id)
    return rows.thread, rows.persona


Entry = tuple[str, str, dict[str, Any]]
"""An event to record: kind, summary and the keyword arguments of agent.events.service.record."""


async def record(runtime: Runtime[Context], state: ThreadState, kind: str, summary: str, **kw: Any) -> None:
    """Append an event to the thread's audit trail."""
    await record_all(runtime, state, [(kind, summary, kw)])


async def record_all(runtime: Runtime[Context], state: ThreadState, entries: list[Entry]) -> None:
    """Append several events in one transaction."""
    thread, _persona = await load(runtime, state)
    async with runtime.context.pool.connection() as conn:
        for kind, summary, kw in entries:
            await events.record(conn, user_id=thread.user_id, thread_id=thread.id, kind=kind, summary=summary, **kw)


async def reply_came_first(runtime: Runtime[Context], state: ThreadState) -> bool:
    """An unread reply waits: it is read before the assistant sends or waits again (the one place this is decided)."""
    async with runtime.context.pool.connection() as conn:
        return await messages.has_unread_reply(conn, thread_id=thread_uuid(state))


async def conversation(runtime: Runtime[Context], thread: ThreadRow) -> list[dict[str, Any]]:
    """The thread's emails for a prompt, oldest first (new text only for inbound)."""
    async with runtime.context.pool.connection() as conn:
        rows = await messages.list_for_thread(conn, user_id=thread.user_id, thread_id=thread.id)
    return [{"direction": r["direction"], "text": r["text"], "at": r["at"].strftime("%Y-%m-%d %H:%M")} for r in rows]


def recipient(thread: ThreadRow) -> dict[str, str]:
    """The recipient fields a prompt may use."""
    return {"email": thread.recipient_email, "name": thread.recipient_name,
            "company": thread.recipient_company, "context": thread.context}


def with_signature(body: str, persona: Assistant) -> str:
    """The body as sent: the persona's signature is appended by code, never by the model."""
    body = body.strip()
    return f"{body}\n\n{persona.signature.strip()}" if persona.signature.strip() else body


def next_wait_id(state: ThreadState, kind: WaitKind) -> str:
    """The id the next wait of this kind gets: "<kind>-<wait_seq + 1>"."""
    return f"{kind.value}-{state.get('wait_seq', 0) + 1}"


async def wait_for(
    runtime: Runtime[Context],
    state: ThreadState,
    *,
    kind: WaitKind,
    payload: dict[str, Any],
    pending_draft: dict[str, Any] | None = None,
    follow_up_due_at: Any = None,
    enter: Callable[[AsyncConnection, str], Awaitable[None]] | None = None,
    entered: Callable[[], Awaitable[None]] | None = None,
    reply_first: bool = False,
) -> tuple[dict[str, Any], EventType, int] | None:
    """Interrupt until an event answers this wait; the entry work runs once (committed, then `entered`)."""
    # With `reply_first`: None, and no wait, when an unread reply waits on entry (checked in the entry's transaction).
    from langgraph.types import interrupt

    seq = state.get("wait_seq", 0) + 1
    wait_id = next_wait_id(state, kind)
    thread, _persona = await load(runtime, state)
    first_time = thread.wait_id != wait_id
    if first_time:
        async with runtime.context.pool.connection() as conn:
            if reply_first and await messages.has_unread_reply(conn, thread_id=thread.id):
                return None
            await lifecycle.enter_wait(
                conn, thread_id=thread.id, wait_id=wait_id, kind=kind, follow_up_due_at=follow_up_due_at,
                pending_draft={**pending_draft, "wait_id": wait_id} if pending_draft is not None else None)
            if enter is not None:
                await enter(conn, wait_id)
        if entered is not None:
            await entered()
    event = dict(interrupt({"wait_id": wait_id, "kind": kind.value, **payload}))
    if pending_draft is not None or follow_up_due_at is not None:
        async with runtime.context.pool.connection() as conn:
            await lifecycle.leave_wait(conn, thread_id=thread.id)
    return event, EventType(event["type"]), seq
