"""Thread schemas for the API and the dashboard."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from agent.assistants.models import TimeZone
from agent.text import HeaderName, NoControls, SingleLine
from agent.threads.lifecycle import Status

__all__ = ["Status"]  # the API's status type is the lifecycle's

Short = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200), SingleLine]
Long = Annotated[str, StringConstraints(strip_whitespace=True, max_length=5000), NoControls]
WaitId = Annotated[str, StringConstraints(max_length=200), SingleLine]
Subject = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300), SingleLine]
HeaderValue = Annotated[str, StringConstraints(max_length=500), SingleLine]
Body = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20000), NoControls]


@dataclass(frozen=True, slots=True)
class ThreadRow:
    """One row of the threads table, as storage returns it (psycopg class_row)."""

    id: UUID
    user_id: UUID
    assistant_id: UUID
    recipient_email: str
    recipient_name: str
    recipient_company: str
    context: str
    status: Status
    close_reason: str | None
    park_reason: str | None
    failures: int
    wait_id: str | None
    wait_kind: str | None
    pending_draft: dict[str, Any] | None
    follow_up_due_at: datetime | None
    subject: str | None
    provider_thread_id: str | None
    transport: str
    created_at: datetime
    updated_at: datetime
    recipient_timezone: str | None
    fields: dict[str, Any]
    send_at: datetime | None
    recipient_language: str | None
    campaign_id: UUID | None = None  # the bulk start (campaign) it belongs to; None when started alone

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))

    def as_dict(self) -> dict[str, Any]:
        """The row as a plain dict (for response models and templates)."""
        return {f.name: getattr(self, f.name) for f in dataclass_fields(self)}


THREAD_COLUMNS = ", ".join(f.name for f in dataclass_fields(ThreadRow))
"""The columns a ThreadRow is read from (new columns must be added to ThreadRow to be read)."""


class ThreadCreate(BaseModel):
    """Start outreach to one recipient."""

    model_config = ConfigDict(extra="forbid")

    assistant_id: UUID
    recipient_email: EmailStr = Field(max_length=254)
    recipient_name: Short = ""
    recipient_company: Short = ""
    context: Long = Field("", description="Personal context for this recipient (what you know, why them).")
    recipient_timezone: TimeZone | None = Field(
        None, description="The recipient's IANA time zone, when known: the sending window follows it."
    )
    recipient_language: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)] | None = Field(
        None, description="The recipient's language when known ('ru', 'German'): the first email is written in it.")


class Thread(BaseModel):
    """A thread as listed."""

    model_config = ConfigDict(extra="ignore", from_attributes=True)

    id: UUID
    assistant_id: UUID
    status: Status
    close_reason: str | None
    park_reason: str | None
    recipient_email: str
    recipient_name: str
    recipient_company: str
    recipient_timezone: str | None = None
    recipient_language: str | None = None
    send_at: datetime | None = None
    """When a queued email is expected to go (real mailboxes; sandbox mail goes at once)."""
    wait_kind: str | None
    follow_up_due_at: datetime | None
    subject: str | None
    created_at: datetime
    updated_at: datetime


class MessageOut(BaseModel):
    """One email in a thread."""

    direction: str
    author: str
    subject: str
    text: str
    message_id: str | None
    at: datetime
    auto_reply: str | None = None
    bounce: str | None = None
    language: str | None = None
    """ISO 639-1 code detected when the email was stored (None when too short to tell)."""


class EventOut(BaseModel):
    """One audit-trail entry."""

    id: int
    kind: str
    summary: str
    detail: dict[str, Any]
    actor: str
    model: str | None
    at: datetime


class ThreadDetail(Thread):
    """A thread with its correspondence, pending draft and decisions."""

    context: str
    wait_id: str | None
    messages: list[MessageOut]
    pending_draft: dict[str, Any] | None
    events: list[EventOut]


class ThreadPage(BaseModel):
    """One page of threads; pass next_cursor back for the next."""

    items: list[Thread]
    next_cursor: str | None


class DraftEdit(BaseModel):
    """An approval, optionally with the user's edits."""

    model_config = ConfigDict(extra="forbid")

    wait_id: WaitId | None = Field(None, description="The draft's wait id; an approval of an older draft is ignored.")
    subject: Subject | None = None
    text: Body | None = None


class Feedback(BaseModel):
    """Guidance for a regenerated draft."""

    model_config = ConfigDict(extra="forbid")

    wait_id: WaitId | None = None
    feedback: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000), NoControls]


class WaitRef(BaseModel):
    """An action that may name the wait it answers."""

    model_config = ConfigDict(extra="forbid")

    wait_id: WaitId | None = None


class HumanReply(BaseModel):
    """A reply the user writes themself while they have taken over."""

    model_config = ConfigDict(extra="forbid")

    text: Body


class SandboxReply(BaseModel):
    """A reply posted as the recipient, in sandbox mode."""

    model_config = ConfigDict(extra="forbid")

    text: Body
    subject: Annotated[str, StringConstraints(strip_whitespace=True, max_length=300), SingleLine] | None = None
    headers: dict[HeaderName, HeaderValue] = Field(
        default_factory=dict, max_length=20, description="Extra headers, e.g. Auto-Submitted, to rehearse automated mail."
    )
