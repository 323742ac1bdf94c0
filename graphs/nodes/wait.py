"""Waiting for the recipient: a reply, or the follow-up timer."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from langgraph.runtime import Runtime
from langgraph.types import Command

from agent.assistants.models import Assistant
from agent.threads.lifecycle import CloseReason, EventType, WaitKind
from graphs.context import Context
from graphs.nodes.common import load, wait_for
from graphs.routes import next_node
from graphs.state import ThreadState


def first_working_day_after(back: date, persona: Assistant) -> datetime:
    """The opening of the persona's sending window on the first sending day after `back`."""
    day = back + timedelta(days=1)
    while day.isoweekday() not in persona.send_days:
        day += timedelta(days=1)
    return datetime.combine(day, persona.send_start, ZoneInfo(persona.timezone))


async def wait(state: ThreadState, runtime: Runtime[Context]) -> Command[Literal["read", "follow_up", "human", "close"]]:
    """Interrupt until a reply, the follow-up timer or a human command; read waiting replies first.

    The timer is the wait's `follow_up_due_at`, stored as the wait is entered; runtime/timers.py fires it.
    """
    thread, persona = await load(runtime, state)
    due = runtime.context.clock() + timedelta(days=persona.follow_up_days)
    if state.get("resume_after"):
        due = max(first_working_day_after(date.fromisoformat(state["resume_after"]), persona),
                  runtime.context.clock() + timedelta(hours=1))

    # A reply that came first is read before waiting (on entry only: once waiting, the event decides).
    answered = await wait_for(runtime, state, kind=WaitKind.reply, payload={"follow_up_due_at": due.isoformat()},
                              follow_up_due_at=due, reply_first=True)
    if answered is None:
        return Command(goto="read", update={"event": {"type": EventType.reply.value},
                                            "wait_seq": state.get("wait_seq", 0) + 1})
    event, kind, seq = answered
    update: ThreadState = {"event": event, "wait_seq": seq}
    goto = next_node(WaitKind.reply, kind, state)
    if kind is EventType.followup_due:
        update["resume_after"] = None
        if state.get("follow_ups_sent", 0) >= persona.follow_up_count:
            goto, update["close_reason"] = "close", CloseReason.no_reply.value
    return Command(goto=goto, update=update)
