"""Where each answered wait goes: one table, checked against the lifecycle's accepted events by a test."""

from __future__ import annotations

from agent.threads.lifecycle import EventType, WaitKind
from graphs.state import ThreadState

COMPOSE = "<composer of the draft>"
ASSISTANT = "<back to the assistant>"
COMPOSER = {"first": "compose_first", "reply": "respond", "follow_up": "follow_up"}

ROUTES: dict[WaitKind, dict[EventType, str]] = {
    WaitKind.reply: {EventType.reply: "read", EventType.followup_due: "follow_up", EventType.takeover: "human"},
    WaitKind.approval: {EventType.approve: "schedule", EventType.regenerate: COMPOSE, EventType.reject: "human",
                        EventType.takeover: "human", EventType.reply: "read"},
    WaitKind.human: {EventType.human_reply: "schedule", EventType.handback: ASSISTANT},
    WaitKind.send_slot: {EventType.send_slot: "send", EventType.limit: "escalate", EventType.reply: "read",
                         EventType.takeover: "human"},
}
"""For each wait, the node each accepted event leads to (COMPOSE and ASSISTANT depend on the state)."""


def next_node(wait: WaitKind, event: EventType, state: ThreadState) -> str:
    """The node an event answering `wait` leads to."""
    node = ROUTES[wait][event]
    if node == COMPOSE:
        return COMPOSER[state["draft"]["kind"]]
    if node == ASSISTANT:
        return "compose_first" if state.get("step", 0) == 0 else "wait"
    return node
