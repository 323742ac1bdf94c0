"""Waiting for a sending slot: windows, the daily cap and spacing hold real mail here (never sandbox mail)."""

from __future__ import annotations

from typing import Literal

from langgraph.runtime import Runtime
from langgraph.types import Command
from psycopg import AsyncConnection

from agent.sending import queue
from agent.threads.lifecycle import EventType, WaitKind
from graphs.context import Context
from graphs.nodes.common import connect, load, reply_came_first, thread_uuid, wait_for
from graphs.routes import next_node
from graphs.state import ThreadState

LIMIT_REACHED = ("Today's limit of emails to this person is reached: the queued email was not sent and the "
                 "conversation is yours.")


async def schedule(state: ThreadState, runtime: Runtime[Context]) -> Command[Literal["send", "escalate", "read", "human"]]:
    """Queue the draft and wait for the dispatcher; sandbox rehearsals and the user's own replies go at once."""
    draft = state["draft"]
    if draft["author"] == "human" or runtime.context.transport.name == "sandbox":
        return Command(goto="send")
    thread, _persona = await load(runtime, state)
    step = state.get("step", 0) + 1

    async def enter(conn: AsyncConnection, wait_id: str) -> None:
        await queue.enqueue(conn, user_id=thread.user_id, thread_id=thread.id, step=step, kind=draft["kind"],
                            wait_id=wait_id)

    async def entered() -> None:
        await runtime.context.scheduler.dispatch_soon(user_id=thread.user_id)

    event, kind, seq = await wait_for(runtime, state, kind=WaitKind.send_slot, payload={"step": step}, enter=enter,
                                      entered=entered)
    if kind is EventType.send_slot and await reply_came_first(runtime, state):
        kind = EventType.reply  # they wrote while this waited: read them first, this email is withdrawn
    update: ThreadState = {"event": event, "wait_seq": seq}
    if kind is not EventType.send_slot:
        async with connect(runtime) as conn:
            await queue.withdraw(conn, thread_id=thread_uuid(state), step=step)
        update["draft"] = None
    if kind is EventType.limit:
        update["escalation"] = LIMIT_REACHED
    return Command(goto=next_node(WaitKind.send_slot, kind, state), update=update)
