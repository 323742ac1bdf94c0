"""Handing the conversation to the human, and taking it back."""

from __future__ import annotations

from typing import Literal

from langgraph.runtime import Runtime
from langgraph.types import Command

from agent.mail.outbox import reply_subject
from agent.threads.lifecycle import EventType, WaitKind
from graphs.context import Context
from graphs.nodes.common import load, record, wait_for
from graphs.routes import next_node
from graphs.state import ThreadState


async def escalate(state: ThreadState, runtime: Runtime[Context]) -> ThreadState:
    """Record why the human is needed."""
    reason = state.get("escalation") or "Handed over to you."
    await record(runtime, state, "escalated", reason, detail={"decision": state.get("decision")},
                 dedupe_key=f"escalate:{state.get('wait_seq', 0)}")
    return {"escalation": None}


async def human(state: ThreadState, runtime: Runtime[Context]) -> Command[Literal["schedule", "wait", "compose_first"]]:
    """Wait while the human has the conversation: they write replies, hand back, or stop."""
    event, kind, seq = await wait_for(runtime, state, kind=WaitKind.human, payload={})
    update: ThreadState = {"event": event, "wait_seq": seq}
    if kind is EventType.human_reply:
        thread, _persona = await load(runtime, state)
        subject = reply_subject(thread["subject"]) if thread["subject"] else (event.get("subject") or "Hello")
        update["draft"] = {"kind": "human", "subject": subject, "text": event["text"], "author": "human"}
    elif kind is EventType.handback:
        await record(runtime, state, "handed_back", "You handed the conversation back to the assistant.",
                     actor="user", dedupe_key=f"handback:{seq}")
    return Command(goto=next_node(WaitKind.human, kind, state), update=update)
