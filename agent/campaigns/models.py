"""Campaign schemas for the API and the dashboard."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, computed_field

from agent.text import SingleLine

CampaignName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), SingleLine]
Source = Literal["list", "csv", "xlsx"]
CampaignAction = Literal["pause", "resume", "stop"]


class Campaign(BaseModel):
    """A named bulk start: one persona, many threads."""

    model_config = ConfigDict(from_attributes=True)

    id: UUID
    assistant_id: UUID
    assistant_name: str = ""
    name: str
    source: Source
    created_at: datetime
    threads: int = 0
    open: int = 0
    sent: int = 0
    replied: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def reply_rate(self) -> float | None:
        """Threads with a human reply among those whose first email went out (None before any went out)."""
        return self.replied / self.sent if self.sent else None


class Funnel(BaseModel):
    """How far the campaign's threads got; each stage counts threads, and each is a part of the one before."""

    threads: int = 0
    queued: int = Field(0, description="Open threads whose first email has not gone out yet.")
    sent: int = Field(0, description="Threads whose first email went out.")
    replied: int = Field(0, description="Threads with a reply from a person (not automatic, not a bounce).")
    positive: int = Field(0, description="Threads with a reply read as interested or asking for a meeting.")
    handed_or_meeting: int = Field(0, description="Threads handed over to you or asking for a meeting.")
    meeting: int = Field(0, description="Threads with a reply asking for a meeting.")
    closed: int = 0
    closed_by_reason: dict[str, int] = Field(default_factory=dict)


class QueueDay(BaseModel):
    """Queued emails expected to go on one day (the mailbox's calendar)."""

    day: date
    count: int
    first_at: datetime


class Queue(BaseModel):
    """What goes out when: the campaign's emails waiting in the send queue."""

    queued: int = Field(0, description="Emails waiting for their sending slot.")
    held: int = Field(0, description="Queued emails of paused threads (they wait until the thread resumes).")
    next_at: datetime | None = None
    last_at: datetime | None = None
    unplanned: int = Field(0, description="Queued emails not given an estimate yet (far down the queue).")
    days: list[QueueDay] = Field(default_factory=list)
    timezone: str = "UTC"


class CampaignDetail(BaseModel):
    """A campaign with its funnel, queue, reply rate and thread counts by status."""

    campaign: Campaign
    funnel: Funnel
    queue: Queue
    reply_rate: float | None
    status_counts: dict[str, int]


class CampaignCreate(BaseModel):
    """Name a bulk start (optional: a default name is made from the file or the persona and the date)."""

    model_config = ConfigDict(extra="forbid")

    name: CampaignName | None = None


class Outcome(BaseModel):
    """What a whole-campaign action did to one thread."""

    thread_id: UUID
    recipient_email: str
    outcome: Literal["done", "queued", "skipped"]
    reason: str | None = None


class ActionReport(BaseModel):
    """A whole-campaign action, thread by thread."""

    campaign_id: UUID
    action: CampaignAction
    done: int
    queued: int
    skipped: int
    untouched: int = Field(description="Threads the action does not apply to (already closed, or not paused).")
    threads: list[Outcome]
