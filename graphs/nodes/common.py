"""Helpers shared by nodes: loading the thread, recording events, waiting, and a run's transactions."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

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


Write = Callable[[AsyncConnection], Awaitable[Any]]
"""An idempotent write that may wait for the run's next transaction."""


@dataclass
class _Run:
    writes: list[Write] = field(default_factory=list)
    ahead: dict[str, Any] = field(default_factory=dict)


_RUN: ContextVar[_Run | None] = ContextVar("ea_run", default=None)


@contextmanager
def run_scope() -> Iterator[None]:
    """One run of a thread's graph (the runner's block): its nodes share waiting writes and rows read ahead."""
    # With durability "exit" a run that dies is run again from its wait, so a write nothing in the run reads before
    # its next transaction may wait for that transaction; the checkpoint never commits before them (it commits with
    # them in runtime.checkpoints.commit_held, or after them through `settle`).
    token = _RUN.set(_Run())
    try:
        yield
    finally:
        _RUN.reset(token)


async def later(runtime: Runtime[Context], write: Write) -> None:
    """Run an idempotent write at the start of the run's next transaction (at once outside a run)."""
    run = _RUN.get()
    if run is None:
        async with runtime.context.pool.connection() as conn:
            await write(conn)
    else:
        run.writes.append(write)


@asynccontextmanager
async def transaction(pool: AsyncConnectionPool) -> AsyncIterator[AsyncConnection]:
    """A pooled connection for one transaction; the run's waiting writes run first, in it."""
    run = _RUN.get()
    writes = list(run.writes) if run is not None else []
    async with pool.connection() as conn:
        for write in writes:
            await write(conn)
        yield conn
    if run is not None:  # committed: they wait no more (after a failure they run again, being idempotent)
        del run.writes[:len(writes)]


def connect(runtime: Runtime[Context]) -> AbstractAsyncContextManager[AsyncConnection]:
    """A node's transaction on the run's pool (see `transaction`)."""
    return transaction(runtime.context.pool)


def writes_waiting() -> bool:
    """The run has writes waiting for a transaction."""
    run = _RUN.get()
    return run is not None and bool(run.writes)


async def settle(pool: AsyncConnectionPool) -> None:
    """Commit the run's waiting writes now, in a transaction of their own, when there are any."""
    if writes_waiting():
        async with transaction(pool):
            pass


def keep_ahead(key: str, value: Any) -> None:
    """Keep rows read ahead for the run's next node (nothing is kept outside a run)."""
    run = _RUN.get()
    if run is not None:
        run.ahead[key] = value


def take_ahead(key: str) -> Any:
    """Rows an earlier node of this run read ahead under `key`, once; None when there are none."""
    run = _RUN.get()
    return run.ahead.pop(key, None) if run is not None else None


def thread_uuid(state: ThreadState) -> UUID:
    """The thread's id as a UUID."""
    return UUID(state["thread_id"])


async def load(runtime: Runtime[Context], state: ThreadState) -> tuple[ThreadRow, Assistant]:
    """The thread row and its persona, as read when the run started (read here only if the runner did not)."""
    rows = runtime.context.rows
    if rows.thread is None or rows.persona is None:
        async with connect(runtime) as conn:
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
    async with connect(runtime) as conn:
        await events.record_many(conn, user_id=thread.user_id, thread_id=thread.id, entries=entries)


async def record_later(runtime: Runtime[Context], state: ThreadState, entries: list[Entry]) -> None:
    """Append several events with the run's next transaction (see `later`): for what no node of the run reads."""
    thread, _persona = await load(runtime, state)
    await later(runtime, partial(events.record_many, user_id=thread.user_id, thread_id=thread.id, entries=entries))


async def reply_came_first(runtime: Runtime[Context], state: ThreadState) -> bool:
    """An unread reply waits: it is read before the assistant sends or waits again (the one place this is decided)."""
    async with connect(runtime) as conn:
        return await messages.has_unread_reply(conn, thread_id=thread_uuid(state))


async def conversation(runtime: Runtime[Context], thread: ThreadRow) -> list[dict[str, Any]]:
    """The thread's emails for a prompt, oldest first (new text only for inbound)."""
    async with connect(runtime) as conn:
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
        async with connect(runtime) as conn:
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
    if pending_draft is not None or follow_up_due_at is not None:  # with the next node's first transaction
        await later(runtime, partial(lifecycle.leave_wait, thread_id=thread.id))
    return event, EventType(event["type"]), seq
