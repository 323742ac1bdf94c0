"""Closing a thread for good."""

from __future__ import annotations

from langgraph.runtime import Runtime

from agent.events import service as events
from agent.suppressions import service as suppressions
from agent.threads import company, lifecycle
from agent.threads.lifecycle import CloseReason
from graphs.context import Context
from graphs.nodes.common import connect, load
from graphs.state import ThreadState

SUPPRESS = {CloseReason.unsubscribed: "unsubscribed by reply", CloseReason.bounced: "bounced"}


async def close(state: ThreadState, runtime: Runtime[Context]) -> ThreadState:
    """Mark the thread closed; suppress the address on opt-out or bounce; stop the company when the persona asks."""
    thread, _persona = await load(runtime, state)
    reason = CloseReason(state.get("close_reason") or thread.close_reason or CloseReason.closed)
    async with connect(runtime) as conn:
        if reason in SUPPRESS:
            await suppressions.add(conn, user_id=thread.user_id, email=thread.recipient_email,
                                   reason=SUPPRESS[reason], source_thread_id=thread.id)
        await lifecycle.close(conn, thread_id=thread.id, reason=reason)
        await events.record(conn, user_id=thread.user_id, thread_id=thread.id, kind="closed",
                            summary=f"Thread closed: {reason.value.replace('_', ' ')}.", detail={"reason": reason.value},
                            dedupe_key="closed")
        await company.stop_company(conn, user_id=thread.user_id, thread_id=thread.id, reason=reason)
    return {}
