"""Advancing one thread's graph: start it, deliver an event, continue after a failure, or park it."""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from langgraph.types import Command

from agent.db import advisory_lock
from agent.events import service as events
from agent.llm import ModelUnavailable
from agent.mail.transport import MailboxDisconnected
from agent.sending import queue
from runtime.sending import defer_dispatch
from runtime.services import Services
from agent.threads import messages
from agent.threads import service as threads
from graphs.nodes.common import WAIT_STATUS
from graphs.nodes.send import ThreadHeld

log = logging.getLogger(__name__)

ACCEPTS = {
    "reply": {"reply", "followup_due", "takeover"},
    "approval": {"approve", "reject", "regenerate", "takeover", "reply"},
    "human": {"human_reply", "handback"},
    "send_slot": {"send_slot", "limit", "reply", "takeover"},
}
MAX_RETRY_DELAY = 3600
MAX_AUTO_RETRIES = 8  # about two hours of backoff with the default base; then the user decides


async def advance(svc: Services, *, thread_id: UUID, event: dict[str, Any] | None) -> str:
    """Move the thread as far as it goes, one worker at a time per thread; returns what happened."""
    async with advisory_lock(svc.pool, f"thread:{thread_id}"):
        return await _advance(svc, thread_id=thread_id, event=event)


async def _advance(svc: Services, *, thread_id: UUID, event: dict[str, Any] | None) -> str:
    kind = (event or {}).get("type")
    async with svc.pool.connection() as conn:
        thread = await threads.get_any(conn, thread_id=thread_id)
        if thread["status"] == "closed":
            if event and kind != "retry":
                await _note(conn, thread, "ignored", f"Ignored {kind}: the thread is closed.", event)
            return "closed"
        if thread["status"] == "paused":
            if kind == "resume" or (kind == "retry" and thread["park_reason"]):
                await threads.update(conn, thread_id=thread_id, park_reason=None,
                                     status=WAIT_STATUS.get(thread["wait_kind"] or "", "active"))
                event, kind = None, None
            else:
                if event and kind not in ("retry", "followup_due"):
                    await _note(conn, thread, "held", f"Held {kind} while paused.", event)
                return "held"
        if kind in ("resume", "retry"):
            event, kind = None, None

    config = {"configurable": {"thread_id": str(thread_id)}}
    snap = await svc.graph.aget_state(config)
    if not snap.values and not snap.next:
        graph_input: Any = {"thread_id": str(thread_id)}
    elif snap.interrupts:
        wait = snap.interrupts[0].value
        if event is None:
            event = await _pending_stimulus(svc, thread_id, wait)
            if event is None:
                return "waiting"
            kind = event["type"]
        if event.get("wait_id") and event["wait_id"] != wait["wait_id"]:
            await _record(svc, thread, "stale", f"Ignored a stale {kind} for {event['wait_id']}.", event)
            return "stale"
        if kind == "reply" and wait["kind"] == "human":
            return "with_human"  # the reply is stored and shown; the human answers it (or hands back)
        if kind not in ACCEPTS[wait["kind"]]:
            await _record(svc, thread, "ignored", f"Ignored {kind} while waiting for {wait['kind']}.", event)
            return "ignored"
        graph_input = Command(resume=event)
    elif snap.next:
        graph_input = None  # a node failed or was held before: run it again
    else:
        return "finished"

    async with svc.pool.connection() as conn:
        # Conditional: a Stop or Pause that landed since the read above wins.
        cur = await conn.execute("UPDATE threads SET status = 'active', updated_at = now()"
                                 " WHERE id = %s AND status NOT IN ('paused', 'closed') RETURNING id", (thread_id,))
        if await cur.fetchone() is None:
            return "held"
    try:
        await svc.graph.ainvoke(graph_input, config, context=await svc.context_for(thread), durability="sync")
    except ThreadHeld:
        return "held"
    except Exception as exc:  # any failure parks the thread visibly; nothing is lost, a retry is queued
        await park(svc, thread, exc)
        return "parked"
    if thread["failures"]:
        async with svc.pool.connection() as conn:
            await threads.update(conn, thread_id=thread_id, failures=0)
    return "ran"


async def park(svc: Services, thread: dict[str, Any], exc: Exception) -> None:
    """Pause the thread with the reason and queue a retry with exponential backoff."""
    if isinstance(exc, (ModelUnavailable, MailboxDisconnected)):
        reason = str(exc)
    else:
        log.exception("thread %s failed", thread["id"])
        reason = f"{exc.__class__.__name__}: {str(exc)[:300]}"
    failures = thread["failures"] + 1
    delay = min(svc.settings.retry_base_seconds * 2 ** (failures - 1), MAX_RETRY_DELAY)
    retry = failures <= MAX_AUTO_RETRIES and not isinstance(exc, MailboxDisconnected)
    if not retry and not isinstance(exc, MailboxDisconnected):
        reason = f"{reason} (tried {failures} times; press Resume to try again)"
    async with svc.pool.connection() as conn:
        cur = await conn.execute(
            "UPDATE threads SET status = 'paused', park_reason = %s, failures = %s, updated_at = now()"
            " WHERE id = %s AND status <> 'closed' RETURNING id", (reason, failures, thread["id"]))
        if await cur.fetchone() is None:
            return  # stopped meanwhile: nothing to retry
        await events.record(conn, user_id=thread["user_id"], thread_id=thread["id"], kind="parked",
                            summary=f"Parked: {reason}", actor="system",
                            detail={"failures": failures, "retry_in_seconds": delay if retry else None})
    if not retry:
        return  # no retry loop: reconnecting Gmail, the user's Resume or the next start continues it
    from runtime.jobs import defer_resume

    await defer_resume(svc.jobs, thread_id=thread["id"], event={"type": "retry"}, delay_seconds=delay,
                       queueing_lock=f"retry:{thread['id']}")


async def requeue_parked(svc: Services) -> int:
    """At startup: parked threads get one retry now (e.g. the model was configured before this start)."""
    from runtime.jobs import defer_resume

    async with svc.pool.connection() as conn:
        cur = await conn.execute("SELECT id FROM threads WHERE status = 'paused' AND park_reason IS NOT NULL")
        ids = [row["id"] for row in await cur.fetchall()]
    for thread_id in ids:
        await defer_resume(svc.jobs, thread_id=thread_id, event={"type": "retry"}, queueing_lock=f"retry:{thread_id}")
    return len(ids)


async def _pending_stimulus(svc: Services, thread_id: UUID, wait: dict[str, Any]) -> dict[str, Any] | None:
    """After a pause: a reply that arrived, or a follow-up that fell due, is delivered now."""
    async with svc.pool.connection() as conn:
        if wait["kind"] in ("reply", "approval", "send_slot") and await messages.unprocessed_inbound(
                conn, thread_id=thread_id):
            return {"type": "reply"}
        thread = await threads.get_any(conn, thread_id=thread_id)
        # A slot that came while paused is not used now: the email goes through window, cap and spacing again.
        replanned = wait["kind"] == "send_slot" and await queue.replan(conn, thread_id=thread_id,
                                                                       wait_id=wait["wait_id"])
    if replanned:
        await defer_dispatch(svc.jobs, user_id=thread["user_id"])
    due = thread["follow_up_due_at"]
    if wait["kind"] == "reply" and due is not None and due <= svc.clock():
        return {"type": "followup_due", "wait_id": wait["wait_id"]}
    return None


async def _record(svc: Services, thread: dict[str, Any], kind: str, summary: str, event: dict[str, Any]) -> None:
    async with svc.pool.connection() as conn:
        await _note(conn, thread, kind, summary, event)


async def _note(conn: Any, thread: dict[str, Any], kind: str, summary: str, event: dict[str, Any]) -> None:
    await events.record(conn, user_id=thread["user_id"], thread_id=thread["id"], kind=kind, summary=summary,
                        detail={"event": event}, actor="system")
