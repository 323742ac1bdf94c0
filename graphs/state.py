"""The checkpointed state of one outreach thread; rows in Postgres hold the rest."""

from __future__ import annotations

from typing import Any, NotRequired

from typing_extensions import (  # pydantic reads these for schemas (typing's TypedDict fails on 3.11)
    TypedDict,
)


class Draft(TypedDict):
    """A message about to be sent."""

    kind: str
    """first | reply | follow_up | human."""
    subject: str
    """Fixed by code for replies and follow-ups ("Re: ..."); written by the model only for the first email."""
    text: str
    """The body, signature included, exactly as it will be sent."""
    author: str
    """assistant | human."""
    verdicts: NotRequired[list[dict[str, Any]]]
    """The guard's verdicts on an assistant draft ({check, ok, detail} each), shown with a draft awaiting approval."""
    attempts: NotRequired[int]
    """How many times the model wrote this draft (2 when the first was refused by the guard)."""


class ThreadState(TypedDict, total=False):
    """What the graph remembers between interrupts."""

    thread_id: str
    """Our threads.id; also the LangGraph thread_id."""
    step: int
    """Send steps completed; the next send uses step + 1 as its outbox key."""
    wait_seq: int
    """Waits entered (or skipped because a reply came first) so far; wait ids are "<kind>-<wait_seq>"."""
    draft: Draft | None
    """The message being composed, reviewed, queued or sent; None once sent, withdrawn or dropped."""
    feedback: str | None
    """The user's guidance for the next regenerated draft."""
    event: dict[str, Any] | None
    """The last resume value, kept for the audit trail: {"type": an agent.threads.lifecycle.EventType value
    (reply | followup_due | approve | reject | regenerate | takeover | human_reply | handback | send_slot | limit),
    "wait_id": ..., and the event's own fields (edits, feedback, text)}."""
    inbound_ids: list[str]
    """Inbound messages being read and decided on."""
    decision: dict[str, Any] | None
    """The last classification: intent, confidence, reason, out_of_office_until, source (rules | model)."""
    close_reason: str | None
    """Why the thread closes (an agent.threads.lifecycle.CloseReason value), set before the close node."""
    escalation: str | None
    """Why the thread is handed to the human, set before the escalate node."""
    follow_ups_sent: int
    """Follow-ups sent since the last reply from the recipient."""
    replies_sent: int
    """Replies the assistant has sent in this thread."""
    resume_after: str | None
    """ISO date: an out-of-office return date that delays the next follow-up."""
