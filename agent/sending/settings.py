"""Sending settings per user (mailbox): the daily cap, spacing, limits and the bounce-rate pause."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection, sql
from pydantic import BaseModel, ConfigDict, Field, model_validator

from agent.assistants.models import TimeZone
from agent.errors import InvalidInput

CONSUMER_DOMAINS = ("gmail.com", "googlemail.com")
CONSUMER_CEILING = 500
WORKSPACE_CEILING = 2000
MIN_SENDS_FOR_BOUNCE_RATE = 10


class SendingSettings(BaseModel):
    """What the user controls about sending from their mailbox."""

    daily_cap: int = Field(description="Emails a day from this mailbox (new first emails, follow-ups and replies).")
    daily_ceiling: int = Field(description="Gmail's own limit for this kind of account; the cap never exceeds it.")
    spacing_min_seconds: int
    spacing_max_seconds: int
    per_thread_daily_max: int = Field(description="Emails to one person a day before the thread is handed to you.")
    bounce_threshold: float
    bounce_window: int
    timezone: str = Field(description="Whose calendar day the daily cap counts.")
    outreach_paused_reason: str | None
    digest_enabled: bool
    digest_interval_hours: int
    last_digest_at: datetime | None


class SendingSettingsUpdate(BaseModel):
    """A partial change of the sending settings."""

    model_config = ConfigDict(extra="forbid")

    daily_cap: int | None = Field(None, ge=1, le=WORKSPACE_CEILING)
    spacing_min_seconds: int | None = Field(None, ge=0, le=3600)
    spacing_max_seconds: int | None = Field(None, ge=0, le=3600)
    per_thread_daily_max: int | None = Field(None, ge=1, le=20)
    bounce_threshold: float | None = Field(None, gt=0, le=1)
    bounce_window: int | None = Field(None, ge=10, le=1000)
    timezone: TimeZone | None = None
    digest_enabled: bool | None = None
    digest_interval_hours: int | None = Field(None, ge=1, le=168)
    resume_outreach: bool = Field(False, description="Lift a bounce-rate pause (older bounces stop counting).")

    @model_validator(mode="after")
    def _spacing(self) -> SendingSettingsUpdate:
        lo, hi = self.spacing_min_seconds, self.spacing_max_seconds
        if lo is not None and hi is not None and lo > hi:
            raise ValueError("spacing_min_seconds must not exceed spacing_max_seconds")
        return self


def ceiling_for(email: str) -> int:
    """Gmail's documented daily sending limit for the account behind this address."""
    return CONSUMER_CEILING if email.lower().rsplit("@", 1)[-1] in CONSUMER_DOMAINS else WORKSPACE_CEILING


async def get_row(conn: AsyncConnection, *, user_id: UUID) -> dict[str, Any]:
    """The user's settings row, created with conservative defaults on first use."""
    await conn.execute("INSERT INTO sending_settings (user_id) VALUES (%s) ON CONFLICT DO NOTHING", (user_id,))
    cur = await conn.execute(
        "SELECT s.*, u.email FROM sending_settings s JOIN users u ON u.id = s.user_id WHERE s.user_id = %s",
        (user_id,),
    )
    return await cur.fetchone()


def effective_cap(row: dict[str, Any]) -> int:
    """The user's cap, never above Gmail's ceiling."""
    return min(row["daily_cap"], ceiling_for(row["email"]))


def to_model(row: dict[str, Any]) -> SendingSettings:
    """The API view of a settings row."""
    return SendingSettings.model_validate({**row, "daily_cap": effective_cap(row),
                                           "daily_ceiling": ceiling_for(row["email"]),
                                           "bounce_threshold": float(row["bounce_threshold"])})


async def update(
    conn: AsyncConnection, *, user_id: UUID, changes: SendingSettingsUpdate, now: datetime
) -> SendingSettings:
    """Apply a partial update after checking it against the stored values and Gmail's ceiling."""
    row = await get_row(conn, user_id=user_id)
    data = changes.model_dump(exclude_unset=True, exclude={"resume_outreach"})
    data = {k: v for k, v in data.items() if v is not None}
    if "daily_cap" in data and data["daily_cap"] > ceiling_for(row["email"]):
        raise InvalidInput(f"daily_cap: Gmail allows at most {ceiling_for(row['email'])} emails a day "
                           f"from {row['email']}.")
    lo = data.get("spacing_min_seconds", row["spacing_min_seconds"])
    hi = data.get("spacing_max_seconds", row["spacing_max_seconds"])
    if lo > hi:
        raise InvalidInput("spacing_min_seconds must not exceed spacing_max_seconds.")
    sets = [sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in data]
    if changes.resume_outreach:
        sets.append(sql.SQL("outreach_paused_reason = NULL, outreach_resumed_at = %(now)s"))
    if sets:
        query = sql.SQL("UPDATE sending_settings SET {}, updated_at = now() WHERE user_id = %(user_id)s").format(
            sql.SQL(", ").join(sets))
        await conn.execute(query, {**data, "user_id": user_id, "now": now})
    return to_model(await get_row(conn, user_id=user_id))
