"""Advancing one thread's graph: start it, deliver an event, continue after a failure, or park it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from agent import failpoints
from agent.events import service as events
from agent.llm import ModelUnavailable
from agent.mail.transport import MailboxDisconnected
from agent.sending import queue
from agent.threads import lifecycle, messages
from agent.threads import service as threads
from agent.threads.lifecycle import ACCEPTS, EventType, Status, WaitKind
from agent.threads.models import ThreadRow
from graphs.context import ThreadHeld
from graphs.nodes.common import run_scope
from runtime import checkpoints
from runtime.defer import defer_resume
from runtime.sending import defer_dispatch, run_dispatch
from runtime.services import Services

log = logging.getLogger(__name__)

MAX_RETRY_DELAY = 3600
MAX_AUTO_RETRIES = 8  # about two hours of backoff with the default base; then the user decides
INLINE_PASS_AHEAD = 8
"""A run makes the dispatcher pass itself when fewer queued emails than this go before its own (see `advance`)."""


async def advance(svc: Services, *, thread_id: UUID, event: dict[str, Any] | None) -> str:
    """Move the thread as far as it goes, one worker at a time per thread; returns what happened.

    A run that queued an email near the head of its mailbox's line (an answer, usually) gets its dispatcher pass
    here, in the same job; when that pass releases this thread's email (the window open, no spacing due), the slot
    is delivered at once, still under the thread's lock: no dispatcher job, no resume job. An email behind
    INLINE_PASS_AHEAD others (a campaign's first emails) wakes the dispatcher job as before, whose queued passes
    collapse into one. A release a crash lost before delivery is delivered by the job's next run (`_slow_input`)
    or the dispatcher's sweep.
    """
    async with svc.locks.hold(f"thread:{thread_id}"):
        while True:
            wake = DispatchWake()
            with checkpoints.read_once():
                outcome = await _advance(svc, thread_id=thread_id, event=event, wake=wake)
            if outcome != "ran" or wake.user_id is None:
                return outcome
            dispatched = await run_dispatch(svc, user_id=wake.user_id, keep=thread_id, unless_ahead=INLINE_PASS_AHEAD)
            released = dispatched.released if dispatched is not None else None
            if released is None or released.thread_id != thread_id:
                return outcome
            failpoints.reached("before_slot_delivery")  # released, not yet delivered: a re-run job delivers it
            event = {"type": released.event.value, "wait_id": released.wait_id}


class DispatchWake:
    """The run's scheduler: the dispatcher pass a run asks for runs after the run, in its job (see `advance`)."""

    def __init__(self) -> None:
        self.user_id: UUID | None = None

    async def dispatch_soon(self, *, user_id: UUID) -> None:
        """Ask for a dispatcher pass of this mailbox once the run has committed."""
        self.user_id = user_id


async def _advance(svc: Services, *, thread_id: UUID, event: dict[str, Any] | None, wake: DispatchWake) -> str:
    kind = _kind(event)
    config = {"configurable": {"thread_id": str(thread_id)}}
    async with svc.pool.connection() as conn:
        with checkpoints.reading_on(conn):  # in this transaction; read once: the run reuses it (read_once)
            snap = await svc.graph.aget_state(config)
        thread = await threads.get_any(conn, thread_id=thread_id)
        if thread.status == Status.closed:
            await _prune(conn, thread_id=thread_id)
            if event and kind is not EventType.retry:
                await _note(conn, thread, "ignored", f"Ignored {kind}: the thread is closed.", event)
            return "closed"
        if thread.status == Status.paused:
            if kind is EventType.resume or (kind is EventType.retry and thread.park_reason):
                await lifecycle.unpause(conn, thread_id=thread_id, wait_kind=thread.wait_kind)
                event, kind = None, None
            else:
                if event and kind not in (EventType.retry, EventType.followup_due):
                    await _note(conn, thread, "held", f"Held {kind} while paused.", event)
                return "held"
        if kind in (EventType.resume, EventType.retry):
            event, kind = None, None
        ready, graph_input = _direct_input(snap, thread, event)
        if ready:  # the usual case: the run starts in this same transaction
            rows = await svc.run_rows(conn, thread_id=thread_id)  # read once; every node of the run shares them
            if rows is None:  # a Stop or Pause landed since the read
                return "held"

    if not ready:
        decided = await _slow_input(svc, thread, snap, event)
        if isinstance(decided, str):
            return decided
        graph_input = decided.value
        async with svc.pool.connection() as conn:
            rows = await svc.run_rows(conn, thread_id=thread_id)
            if rows is None:  # a Stop or Pause since the read wins
                return "held"
    try:
        context = await svc.context_for(rows, scheduler=wake)
        # One checkpoint per run, at its end (and on any failure): a run repeated after a crash is safe, the outbox
        # sends each step once and `_run_was_lost` lets it read again the replies the lost run had read.
        # A node's idempotent writes may wait for the run's next transaction; the exit checkpoint, its writes and
        # whatever still waits commit together, after the run (also when it failed: it checkpoints where it failed).
        with run_scope(), checkpoints.held():
            try:
                result = await svc.graph.ainvoke(graph_input, config, context=context, durability="exit")
            finally:
                await checkpoints.commit_held(svc.pool)
    except ThreadHeld:
        return "held"
    except Exception as exc:  # any failure parks the thread visibly; nothing is lost, a retry is queued
        await park(svc, thread, exc)
        return "parked"
    if "__interrupt__" not in result:  # the graph ended: the thread is closed
        await prune_history(svc, thread_id=thread_id)
    if thread.failures:
        async with svc.pool.connection() as conn:
            await lifecycle.ran_cleanly(conn, thread_id=thread_id)
    return "ran"


@dataclass(frozen=True)
class _Input:
    value: Any
    """What ainvoke gets: the first state, a Command(resume=...), or None to run a failed node again."""


def _resume(event: dict[str, Any]) -> Any:
    from langgraph.types import Command  # imported on first use: the server is ready before LangGraph loads

    return Command(resume=event)


def _direct_input(snap: Any, thread: ThreadRow, event: dict[str, Any] | None) -> tuple[bool, Any]:
    """The run's input when choosing it needs no other read or record (True, input); else (False, None)."""
    if not snap.values and not snap.next:
        return True, {"thread_id": str(thread.id)}
    if snap.interrupts:
        wait = snap.interrupts[0].value
        wait_kind, kind = WaitKind(wait["kind"]), _kind(event)
        if event is None or _run_was_lost(thread, wait) or event.get("wait_id") not in (None, wait["wait_id"]) \
                or (kind is EventType.reply and wait_kind in (WaitKind.human, WaitKind.send_slot)) \
                or kind not in ACCEPTS[wait_kind]:
            return False, None
        return True, _resume(event)
    return (True, None) if snap.next else (False, None)


async def _slow_input(svc: Services, thread: ThreadRow, snap: Any, event: dict[str, Any] | None) -> _Input | str:
    """The run's input after a lost run, a pause or an unusual event; or what happened instead of a run."""
    if not snap.interrupts:
        return "finished"
    wait = snap.interrupts[0].value
    wait_kind = WaitKind(wait["kind"])
    if _run_was_lost(thread, wait):
        await _reread_after(svc, thread_id=thread.id, checkpoint_ts=snap.created_at)
    if event is None:
        event = await _pending_stimulus(svc, thread.id, wait)
        if event is None:
            return "waiting"
    kind = _kind(event)
    if event.get("wait_id") and event["wait_id"] != wait["wait_id"]:
        await _record(svc, thread, "stale", f"Ignored a stale {kind} for {event['wait_id']}.", event)
        return "stale"
    if kind is EventType.reply and wait_kind is WaitKind.human:
        return "with_human"  # the reply is stored and shown; the human answers it (or hands back)
    if kind is EventType.reply and wait_kind is WaitKind.send_slot:
        async with svc.pool.connection() as conn:
            unread = await messages.has_unread_reply(conn, thread_id=thread.id)
            released = None if unread else await queue.released_for(conn, thread_id=thread.id, wait_id=wait["wait_id"])
        if not unread:
            # A reply event already read: its job ran again after the run that answered it (a crash after that run
            # queued the answer). Delivered, it would withdraw the queued answer. When the answer's slot was
            # released (the crash came between the dispatcher pass and the send), the release is delivered now.
            if released is not None:
                return _Input(_resume({"type": released.value, "wait_id": wait["wait_id"]}))
            await _record(svc, thread, "stale", "Ignored a reply that was already read; the queued answer stays.",
                          event)
            return "stale"
    if kind not in ACCEPTS[wait_kind]:
        await _record(svc, thread, "ignored", f"Ignored {kind} while waiting for {wait_kind}.", event)
        return "ignored"
    return _Input(_resume(event))


def _run_was_lost(thread: ThreadRow, wait: dict[str, Any]) -> bool:
    """The last run from this wait never reached its checkpoint: the worker died while the thread was running."""
    running = thread.status == Status.active and thread.wait_kind != WaitKind.send_slot
    return running or (thread.wait_id is not None and thread.wait_id != wait["wait_id"])


async def _reread_after(svc: Services, *, thread_id: UUID, checkpoint_ts: str | None) -> None:
    """Replies the lost run marked read are unread again, so the repeated run reads and answers them."""
    if checkpoint_ts is None:
        return
    async with svc.pool.connection() as conn:
        cur = await conn.execute("UPDATE messages SET processed_at = NULL WHERE thread_id = %s AND direction = 'in'"
                                 " AND processed_at >= %s::timestamptz", (thread_id, checkpoint_ts))
    if cur.rowcount:
        log.warning("thread %s: the last run was lost; %d reply(ies) will be read again", thread_id, cur.rowcount)


async def prune_history(svc: Services, *, thread_id: UUID) -> None:
    """A finished thread keeps its last checkpoint only; the audit trail is in messages and events."""
    async with svc.pool.connection() as conn:
        await _prune(conn, thread_id=thread_id)


async def _prune(conn: Any, *, thread_id: UUID) -> None:
    """Delete what a closed thread no longer needs: checkpoints, writes and blobs but its last, and its jobs."""
    tid = str(thread_id)
    # Its finished jobs, and its timers (a closed thread ignores them), go; procrastinate's events cascade.
    await conn.execute("DELETE FROM procrastinate_jobs WHERE args->>'thread_id' = %s AND (status = 'succeeded' OR"
                       " (status = 'todo' AND args->'event'->>'type' = %s))", (tid, EventType.followup_due.value))
    cur = await conn.execute("SELECT checkpoint_id, checkpoint->'channel_versions' AS versions FROM checkpoints"
                             " WHERE thread_id = %s AND checkpoint_ns = '' ORDER BY checkpoint_id DESC LIMIT 1", (tid,))
    last = await cur.fetchone()
    if last is None:
        return
    await conn.execute("DELETE FROM checkpoints WHERE thread_id = %s AND checkpoint_id <> %s", (tid, last["checkpoint_id"]))
    await conn.execute("DELETE FROM checkpoint_writes WHERE thread_id = %s AND checkpoint_id <> %s",
                       (tid, last["checkpoint_id"]))
    await conn.execute("DELETE FROM checkpoint_blobs b WHERE b.thread_id = %s AND NOT EXISTS (SELECT 1 FROM"
                       " jsonb_each_text(%s::jsonb) v WHERE v.key = b.channel AND v.value = b.version)",
                       (tid, Jsonb(last["versions"] or {})))


async def park(svc: Services, thread: ThreadRow, exc: Exception) -> None:
    """Pause the thread with the reason and queue a retry with exponential backoff."""
    if isinstance(exc, (ModelUnavailable, MailboxDisconnected)):
        reason = str(exc)
    else:
        log.exception("thread %s failed", thread.id)
        reason = f"{exc.__class__.__name__}: {str(exc)[:300]}"
    failures = thread.failures + 1
    delay = min(svc.settings.retry_base_seconds * 2 ** (failures - 1), MAX_RETRY_DELAY)
    retry = failures <= MAX_AUTO_RETRIES and not isinstance(exc, MailboxDisconnected)
    if not retry and not isinstance(exc, MailboxDisconnected):
        reason = f"{reason} (tried {failures} times; press Resume to try again)"
    async with svc.pool.connection() as conn:
        if not await lifecycle.park(conn, thread_id=thread.id, reason=reason, failures=failures):
            return  # stopped meanwhile: nothing to retry
        await events.record(conn, user_id=thread.user_id, thread_id=thread.id, kind="parked",
                            summary=f"Parked: {reason}", actor="system",
                            detail={"failures": failures, "retry_in_seconds": delay if retry else None})
    if not retry:
        return  # no retry loop: reconnecting Gmail, the user's Resume or the next start continues it
    await defer_resume(svc.jobs, thread_id=thread.id, event={"type": EventType.retry.value}, delay_seconds=delay,
                       queueing_lock=f"retry:{thread.id}")


async def requeue_parked(svc: Services) -> int:
    """At startup: parked threads get one retry now (e.g. the model was configured before this start)."""
    async with svc.pool.connection() as conn:
        ids = await threads.parked_ids(conn)
    for thread_id in ids:
        await defer_resume(svc.jobs, thread_id=thread_id, event={"type": EventType.retry.value},
                           queueing_lock=f"retry:{thread_id}")
    return len(ids)


async def _pending_stimulus(svc: Services, thread_id: UUID, wait: dict[str, Any]) -> dict[str, Any] | None:
    """After a pause: a reply that arrived, or a follow-up that fell due, is delivered now."""
    kind = WaitKind(wait["kind"])
    async with svc.pool.connection() as conn:
        if EventType.reply in ACCEPTS[kind] and await messages.has_unread_reply(conn, thread_id=thread_id):
            return {"type": EventType.reply.value}
        thread = await threads.get_any(conn, thread_id=thread_id)
        # A slot that came while paused is not used now: the email goes through window, cap and spacing again.
        replanned = kind is WaitKind.send_slot and await queue.replan(conn, thread_id=thread_id,
                                                                      wait_id=wait["wait_id"])
    if replanned:
        await defer_dispatch(svc.jobs, user_id=thread.user_id)
    due = thread.follow_up_due_at
    if kind is WaitKind.reply and due is not None and due <= svc.clock():
        return {"type": EventType.followup_due.value, "wait_id": wait["wait_id"]}
    return None


def _kind(event: dict[str, Any] | None) -> EventType | None:
    """The event's type (an unknown type is a programming error and fails loudly)."""
    return EventType(event["type"]) if event else None


async def _record(svc: Services, thread: ThreadRow, kind: str, summary: str, event: dict[str, Any]) -> None:
    async with svc.pool.connection() as conn:
        await _note(conn, thread, kind, summary, event)


async def _note(conn: Any, thread: ThreadRow, kind: str, summary: str, event: dict[str, Any]) -> None:
    await events.record(conn, user_id=thread.user_id, thread_id=thread.id, kind=kind, summary=summary,
                        detail={"event": event}, actor="system")
