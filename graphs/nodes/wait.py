"""Waiting for the recipient: a reply, or the follow-up timer."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from langgraph.runtime import Runtime
from psycopg import AsyncConnection

from agent.assistants.models import Assistant
from agent.threads import messages
from agent.threads import service as threads
from graphs.context import Context
from graphs.nodes.common import load, thread_uuid, wait_for
from graphs.state import ThreadState


def first_working_day_after(back: date, persona: Assistant) -> datetime:
    """The opening of the persona's sending window on the first sending day after `back`."""
    day = back + timedelta(days=1)
    while day.isoweekday() not in persona.send_days:
        day += timedelta(days=1)
    return datetime.combine(day, persona.send_start, ZoneInfo(persona.timezone))


ROUTES = {"reply": "read", "followup_due": "follow_up", "takeover": "human"}


async def wait(state: ThreadState, runtime: Runtime[Context]) -> ThreadState:
    """Interrupt until a reply, the follow-up timer or a human command; read waiting replies first."""
    seq = state.get("wait_seq", 0) + 1
    thread, persona = await load(runtime, state)
    if thread["wait_id"] != f"reply-{seq}":  # on entry only: once waiting, the event decides (e.g. a takeover)
        async with runtime.context.pool.connection() as conn:
            if await messages.unprocessed_inbound(conn, thread_id=thread_uuid(state)):
                return {"event": {"type": "reply"}, "wait_seq": seq, "route": "read"}
    due = runtime.context.clock() + timedelta(days=persona.follow_up_days)
    if state.get("resume_after"):
        due = max(first_working_day_after(date.fromisoformat(state["resume_after"]), persona),
                  runtime.context.clock() + timedelta(hours=1))

    async def enter(conn: AsyncConnection, wait_id: str) -> None:
        await threads.update(conn, thread_id=thread["id"], follow_up_due_at=due)
        await runtime.context.scheduler.follow_up_at(thread_id=thread["id"], wait_id=wait_id, when=due)

    event, seq = await wait_for(runtime, state, kind="reply", payload={"follow_up_due_at": due.isoformat()},
                                enter=enter)
    async with runtime.context.pool.connection() as conn:
        await threads.update(conn, thread_id=thread["id"], follow_up_due_at=None)
    update: ThreadState = {"event": event, "wait_seq": seq, "route": ROUTES.get(event.get("type", ""), "read")}
    if event.get("type") == "followup_due":
        if state.get("follow_ups_sent", 0) >= persona.follow_up_count:
            update.update(route="close", close_reason="no_reply")
        update["resume_after"] = None
    return update
