"""The only node with an outside side effect: sending, idempotent through the outbox."""

from __future__ import annotations

from langgraph.runtime import Runtime

from agent.mail import outbox
from agent.threads import messages
from graphs.context import Context
from graphs.nodes.common import load, record, thread_uuid
from graphs.state import ThreadState


class ThreadHeld(RuntimeError):
    """The user paused the thread while it was working; sending waits for resume."""


async def _reply_came_first(runtime: Runtime[Context], state: ThreadState, step: int) -> bool:
    """An unread reply exists and this step was never attempted (an attempted one must be reconciled, not dropped)."""
    async with runtime.context.pool.connection() as conn:
        cur = await conn.execute("SELECT attempts FROM outbox WHERE thread_id = %s AND step = %s",
                                 (thread_uuid(state), step))
        row = await cur.fetchone()
        if row is not None and row["attempts"] > 0:
            return False
        return bool(await messages.unprocessed_inbound(conn, thread_id=thread_uuid(state)))


async def send(state: ThreadState, runtime: Runtime[Context]) -> ThreadState:
    """Send the current draft once; the recipient comes from the thread row, never from the model."""
    draft = state["draft"]
    thread, _persona = await load(runtime, state)
    if thread["status"] == "closed":
        return {"route": "closed", "draft": None}
    if thread["status"] == "paused" and not thread["park_reason"]:
        raise ThreadHeld("paused by the user before sending")
    step = state.get("step", 0) + 1
    if draft["author"] == "assistant" and await _reply_came_first(runtime, state, step):
        await record(runtime, state, "draft_dropped", "A reply arrived before this email went out; it was not "
                     "sent and the assistant reads the reply first.", detail={"step": step, "kind": draft["kind"]},
                     dedupe_key=f"dropped:{step}")
        return {"draft": None, "route": "read"}
    result = await outbox.send_step(
        runtime.context.pool, runtime.context.transport, thread_id=thread["id"], step=step, kind=draft["kind"],
        author=draft["author"], subject=draft["subject"], text=draft["text"], sender=runtime.context.sender,
        sent_at=runtime.context.clock(),
    )
    if not result.sent:
        return {"step": step, "draft": None, "route": "close", "close_reason": "suppressed"}
    update: ThreadState = {"step": step, "draft": None, "route": "human" if draft["author"] == "human" else "wait"}
    if draft["kind"] == "follow_up":
        update["follow_ups_sent"] = state.get("follow_ups_sent", 0) + 1
    elif draft["kind"] == "reply":
        update["replies_sent"] = state.get("replies_sent", 0) + 1
        update["follow_ups_sent"] = 0
    if draft["author"] == "human":
        async with runtime.context.pool.connection() as conn:
            pending = await messages.unprocessed_inbound(conn, thread_id=thread_uuid(state))
            await messages.mark_processed(conn, message_ids=[m["id"] for m in pending])
    return update
