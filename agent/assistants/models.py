"""Persona schemas shared by the API, the dashboard and the graph."""

from __future__ import annotations

from datetime import datetime, time
from enum import StrEnum
from typing import Annotated
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from agent.text import NoControls, SingleLine

Short = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200), SingleLine]
Long = Annotated[str, StringConstraints(strip_whitespace=True, max_length=5000), NoControls]


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}; use an IANA name such as Europe/Berlin") from exc
    return name


def _weekdays(days: list[int]) -> list[int]:
    if not days or any(d < 1 or d > 7 for d in days):
        raise ValueError("use ISO weekdays 1 (Monday) to 7 (Sunday), at least one")
    return sorted(set(days))


def _local(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError("give a time of day without a time zone, e.g. 09:00; the window follows the timezone field")
    return value


TimeZone = Annotated[str, StringConstraints(strip_whitespace=True, max_length=64), SingleLine, AfterValidator(_zone)]
Weekdays = Annotated[list[int], AfterValidator(_weekdays)]
Required = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), SingleLine]
RequiredLong = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000), NoControls]
TimeOfDay = Annotated[time, AfterValidator(_local)]


class Autonomy(StrEnum):
    """How much the assistant may send without the user's approval."""

    autonomous = "autonomous"
    approve_first = "approve_first"
    approve_all = "approve_all"

    def needs_review(self, kind: str) -> bool:
        """Whether a draft of this kind (first, reply, follow_up) waits for approval."""
        if self is Autonomy.approve_all:
            return True
        return self is Autonomy.approve_first and kind == "first"


class AssistantFields(BaseModel):
    """The fields a user fills in to describe a persona."""

    model_config = ConfigDict(extra="forbid")

    name: Required = Field(description="A name for this assistant, for you (e.g. 'Beta invites').")
    sender_name: Required = Field(description="The name recipients see, e.g. 'Anna from Acme'.")
    role: Short = Field("", description="The sender's role, e.g. 'Founder'.")
    company: Short = Field("", description="The company the assistant speaks for.")
    offer: RequiredLong = Field(description="What is offered, in plain words.")
    value_proposition: Long = Field("", description="Why it matters to the recipient.")
    target_audience: Long = Field("", description="Who the recipients are.")
    goal: RequiredLong = Field(description="What a good outcome is, e.g. 'book a 20-minute demo'.")
    call_to_action: Long = Field("", description="The concrete next step, e.g. a booking link.")
    tone: Short = Field("friendly and concise", description="How it writes.")
    language: Short = Field("match", description="'match' to answer in the recipient's language, or a fixed language.")
    signature: Long = Field("", description="Appended to every email.")
    knowledge: Long = Field("", description="Facts and FAQ answers the assistant may use.")
    forbidden: Long = Field("", description="Things never to say or promise.")
    autonomy: Autonomy = Field(Autonomy.approve_first, description="What needs your approval before sending.")
    follow_up_count: int = Field(2, ge=0, le=10, description="Follow-ups after silence.")
    follow_up_days: int = Field(3, ge=1, le=90, description="Days of silence before each follow-up.")
    max_replies: int = Field(5, ge=0, le=50, description="Assistant replies in a thread before handing over.")
    send_days: Weekdays = Field([1, 2, 3, 4, 5], description="Days emails may go out (1 = Monday … 7 = Sunday).")
    send_start: TimeOfDay = Field(time(9), description="Start of the sending window, in the time zone below.")
    send_end: TimeOfDay = Field(time(17), description="End of the sending window (00:00 means midnight).")
    timezone: TimeZone = Field("UTC", description="Time zone of the window (the recipient's is used when known).")
    stop_company_on_decline: bool = Field(
        False, description="When one person at a company declines or opts out, stop the other open threads there."
    )

    @model_validator(mode="after")
    def _window(self) -> AssistantFields:
        if self.send_start >= self.send_end and self.send_end != time(0):
            raise ValueError("send_start must be before send_end (use 00:00 as send_end for midnight)")
        return self


class AssistantUpdate(BaseModel):
    """A partial update: only the fields sent change."""

    model_config = ConfigDict(extra="forbid")

    name: Required | None = None
    sender_name: Required | None = None
    role: Short | None = None
    company: Short | None = None
    offer: RequiredLong | None = None
    value_proposition: Long | None = None
    target_audience: Long | None = None
    goal: RequiredLong | None = None
    call_to_action: Long | None = None
    tone: Short | None = None
    language: Short | None = None
    signature: Long | None = None
    knowledge: Long | None = None
    forbidden: Long | None = None
    autonomy: Autonomy | None = None
    follow_up_count: int | None = Field(None, ge=0, le=10)
    follow_up_days: int | None = Field(None, ge=1, le=90)
    max_replies: int | None = Field(None, ge=0, le=50)
    send_days: Weekdays | None = None
    send_start: TimeOfDay | None = None
    send_end: TimeOfDay | None = None
    timezone: TimeZone | None = None
    stop_company_on_decline: bool | None = None


class Assistant(AssistantFields):
    """A stored persona."""

    model_config = ConfigDict(extra="ignore")

    id: UUID
    archived_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


FIELD_NAMES = tuple(AssistantFields.model_fields)
