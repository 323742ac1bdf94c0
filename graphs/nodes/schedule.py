"""Waiting for a sending slot: windows, the daily cap and spacing hold real mail here (never sandbox mail)."""

from __future__ import annotations

from langgraph.runtime import Runtime
from psycopg import AsyncConnection

from agent.sending import queue
from agent.threads import messages
from graphs.context import Context
from graphs.nodes.common import load, thread_uuid, wait_for
from graphs.state import ThreadState

ROUTES = {"send_slot": "send", "limit": "escalate", "reply": "read", "takeover": "human"}


async def schedule(state: ThreadState, runtime: Runtime[Context]) -> ThreadState:
    """Queue the draft and wait for the dispatcher; sandbox rehearsals and the user's own replies go at once."""
    draft = state["draft"]
    if draft["author"] == "human" or runtime.context.transport.name == "sandbox":
        return {"route": "send"}
    thread, _persona = await load(runtime, state)
    step = state.get("step", 0) + 1

    async def enter(conn: AsyncConnection, wait_id: str) -> None:
        await queue.enqueue(conn, user_id=thread["user_id"], thread_id=thread["id"], step=step, kind=draft["kind"],
                            wait_id=wait_id)

    async def entered() -> None:
        await runtime.context.scheduler.dispatch_soon(user_id=thread["user_id"])

    event, seq = await wait_for(runtime, state, kind="send_slot", payload={"step": step}, enter=enter,
                                entered=entered)
    kind = event.get("type", "")
    if kind == "send_slot":
        async with runtime.context.pool.connection() as conn:
            if await messages.unprocessed_inbound(conn, thread_id=thread_uuid(state)):
                kind = "reply"  # they wrote while this waited: read them first, this email is withdrawn
    update: ThreadState = {"event": event, "wait_seq": seq, "route": ROUTES.get(kind, "send")}
    if kind != "send_slot":
        async with runtime.context.pool.connection() as conn:
            await queue.withdraw(conn, thread_id=thread_uuid(state), step=step)
        update["draft"] = None
    if kind == "limit":
        update["escalation"] = ("Today's limit of emails to this person is reached: the queued email was not sent "
                                "and the conversation is yours.")
    return update
