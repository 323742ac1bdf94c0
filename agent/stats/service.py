"""What happened and what needs the user: SQL over threads, messages and events; keyword-only, a connection in."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection, sql

from agent.threads.lifecycle import Status

POSITIVE_INTENTS = ("interested", "meeting_request")
HUMAN_REPLY = "m.direction = 'in' AND m.auto_reply IS NULL AND m.bounce IS NULL"


@dataclass
class Row:
    """Counts for one assistant (or all of them) over a window."""

    assistant_id: UUID | None
    name: str
    sent: int = 0
    replies: int = 0
    contacted: int = 0
    replied: int = 0
    positive: int = 0

    @property
    def reply_rate(self) -> float | None:
        """Contacted threads that got a human reply, or None when none were contacted."""
        return self.replied / self.contacted if self.contacted else None


@dataclass
class Summary:
    """The window's totals and the per-assistant rows (assistants with activity or not archived)."""

    days: int
    total: Row
    per_assistant: list[Row] = field(default_factory=list)


SENT_AND_REPLIES = f"""
SELECT t.assistant_id, count(*) FILTER (WHERE m.direction = 'out') AS sent,
       count(*) FILTER (WHERE {HUMAN_REPLY}) AS replies
FROM messages m JOIN threads t ON t.id = m.thread_id
WHERE m.user_id = %(user_id)s AND t.user_id = %(user_id)s AND m.at >= %(since)s
GROUP BY t.assistant_id"""

CONTACTED = f"""
SELECT t.assistant_id, count(*) AS contacted, count(*) FILTER (WHERE f.replied) AS replied
FROM (SELECT m.thread_id, min(m.at) FILTER (WHERE m.direction = 'out') AS first_at,
             bool_or({HUMAN_REPLY}) AS replied
      FROM messages m WHERE m.user_id = %(user_id)s AND m.thread_id IS NOT NULL GROUP BY m.thread_id) f
JOIN threads t ON t.id = f.thread_id
WHERE t.user_id = %(user_id)s AND f.first_at >= %(since)s
GROUP BY t.assistant_id"""

POSITIVE = """
SELECT t.assistant_id, count(*) AS positive
FROM events e JOIN threads t ON t.id = e.thread_id
WHERE e.user_id = %(user_id)s AND t.user_id = %(user_id)s AND e.kind = 'decision' AND e.at >= %(since)s
  AND e.detail->>'intent' = ANY(%(intents)s)
GROUP BY t.assistant_id"""


async def summary(conn: AsyncConnection, *, user_id: UUID, days: int, now: datetime | None = None) -> Summary:
    """Emails sent, replies, reply rate and positive replies in the last `days` days, per assistant."""
    params = {"user_id": user_id, "since": (now or datetime.now(UTC)) - timedelta(days=days),
              "intents": list(POSITIVE_INTENTS)}
    cur = await conn.execute("SELECT id, name, archived_at FROM assistants WHERE user_id = %s ORDER BY created_at",
                             (user_id,))
    assistants = await cur.fetchall()
    rows = {a["id"]: Row(assistant_id=a["id"], name=a["name"]) for a in assistants}
    for query in (SENT_AND_REPLIES, CONTACTED, POSITIVE):
        cur = await conn.execute(query, params)
        for found in await cur.fetchall():
            row = rows[found["assistant_id"]]
            for key, value in found.items():
                if key != "assistant_id":
                    setattr(row, key, value)
    archived = {a["id"] for a in assistants if a["archived_at"] is not None}
    shown = [r for r in rows.values() if r.assistant_id not in archived or r.sent or r.replies or r.positive]
    total = Row(assistant_id=None, name="")
    for r in rows.values():
        for key in ("sent", "replies", "contacted", "replied", "positive"):
            setattr(total, key, getattr(total, key) + getattr(r, key))
    return Summary(days=days, total=total, per_assistant=shown)


async def sent_since(conn: AsyncConnection, *, user_id: UUID, since: datetime) -> int:
    """Emails sent from the user's mailbox since a moment."""
    cur = await conn.execute("SELECT count(*) AS n FROM messages WHERE user_id = %s AND direction = 'out' AND at >= %s",
                             (user_id, since))
    return (await cur.fetchone())["n"]


_NEEDS_YOU = {"approval": Status.awaiting_approval.value, "human": Status.needs_human.value,
              "paused": Status.paused.value}


async def attention(conn: AsyncConnection, *, user_id: UUID, limit: int = 5) -> dict[str, Any]:
    """Threads that need the user: drafts to approve, conversations handed over, threads parked by a failure."""
    cur = await conn.execute(
        "SELECT count(*) FILTER (WHERE status = %(approval)s) AS approval,"
        " count(*) FILTER (WHERE status = %(human)s) AS human,"
        " count(*) FILTER (WHERE status = %(paused)s AND park_reason IS NOT NULL) AS parked"
        " FROM threads WHERE user_id = %(user_id)s AND status IN (%(approval)s, %(human)s, %(paused)s)",
        {**_NEEDS_YOU, "user_id": user_id},
    )
    counts = await cur.fetchone()
    cur = await conn.execute(
        "SELECT t.id, t.status, t.recipient_email, t.recipient_name, t.park_reason, t.updated_at, a.name AS assistant"
        " FROM threads t JOIN assistants a ON a.id = t.assistant_id"
        " WHERE t.user_id = %(user_id)s AND (t.status IN (%(approval)s, %(human)s)"
        "   OR (t.status = %(paused)s AND t.park_reason IS NOT NULL))"
        " ORDER BY t.updated_at DESC LIMIT %(limit)s",
        {**_NEEDS_YOU, "user_id": user_id, "limit": limit},
    )
    return {**counts, "threads": await cur.fetchall()}


# Charts: per-day series over 7, 30 or 90 days, for the user, one persona or one campaign (one SQL per query).

CHART_DAYS = (7, 30, 90)

DAILY_SQL = f"""
SELECT d.day::date AS day, coalesce(x.sent, 0) AS sent, coalesce(x.replies, 0) AS replies
FROM generate_series(%(first)s::date, %(last)s::date, interval '1 day') AS d(day)
LEFT JOIN (SELECT (m.at AT TIME ZONE %(tz)s)::date AS day, count(*) FILTER (WHERE m.direction = 'out') AS sent,
                  count(*) FILTER (WHERE {HUMAN_REPLY}) AS replies
           FROM messages m JOIN threads t ON t.id = m.thread_id
           WHERE m.user_id = %(user_id)s AND t.user_id = %(user_id)s AND m.at >= %(since)s {{scope}}
           GROUP BY 1) x ON x.day = d.day::date
ORDER BY 1"""

COHORT_SQL = f"""
SELECT d.day::date AS day, coalesce(x.contacted, 0) AS contacted, coalesce(x.replied, 0) AS replied
FROM generate_series(%(first)s::date, %(last)s::date, interval '1 day') AS d(day)
LEFT JOIN (SELECT (f.first_at AT TIME ZONE %(tz)s)::date AS day, count(*) AS contacted,
                  count(*) FILTER (WHERE f.replied) AS replied
           FROM (SELECT m.thread_id, min(m.at) FILTER (WHERE m.direction = 'out') AS first_at,
                        bool_or({HUMAN_REPLY}) AS replied
                 FROM messages m JOIN threads t ON t.id = m.thread_id
                 WHERE m.user_id = %(user_id)s AND t.user_id = %(user_id)s {{scope}}
                   AND m.thread_id IN (SELECT s.thread_id FROM messages s WHERE s.user_id = %(user_id)s
                                       AND s.direction = 'out' AND s.at >= %(since)s)
                 GROUP BY m.thread_id) f
           WHERE f.first_at >= %(since)s GROUP BY 1) x ON x.day = d.day::date
ORDER BY 1"""


@dataclass(frozen=True)
class Day:
    """One day of a chart: emails sent, human replies, and the threads first contacted that day that got one."""

    day: date
    sent: int
    replies: int
    contacted: int
    replied: int

    @property
    def reply_rate(self) -> float | None:
        """Threads first contacted this day that got a human reply, or None when none were contacted."""
        return self.replied / self.contacted if self.contacted else None


@dataclass(frozen=True)
class Daily:
    """Per-day series over a window, in the mailbox's calendar."""

    days: int
    timezone: str
    points: list[Day]


async def mailbox_timezone(conn: AsyncConnection, *, user_id: UUID) -> str:
    """The zone of the mailbox's calendar day (the daily cap's), UTC until set."""
    cur = await conn.execute("SELECT timezone FROM sending_settings WHERE user_id = %s", (user_id,))
    row = await cur.fetchone()
    return row["timezone"] if row else "UTC"


def chart_days(value: int | str | None) -> int:
    """7, 30 or 90 (anything else is 7)."""
    try:
        days = int(value or 7)
    except (TypeError, ValueError):
        return 7
    return days if days in CHART_DAYS else 7


async def daily(conn: AsyncConnection, *, user_id: UUID, days: int, assistant_id: UUID | None = None,
                campaign_id: UUID | None = None, now: datetime | None = None) -> Daily:
    """Sends, replies and reply rate per day over the last `days` days (today included), for a scope."""
    tz = await mailbox_timezone(conn, user_id=user_id)
    last = (now or datetime.now(UTC)).astimezone(ZoneInfo(tz)).date()
    first = last - timedelta(days=days - 1)
    params = {"user_id": user_id, "tz": tz, "first": first, "last": last,
              "since": datetime.combine(first, time(0), ZoneInfo(tz)), "assistant_id": assistant_id,
              "campaign_id": campaign_id}
    scope = sql.SQL("")
    if campaign_id is not None:
        scope = sql.SQL("AND t.campaign_id = %(campaign_id)s")
    elif assistant_id is not None:
        scope = sql.SQL("AND t.assistant_id = %(assistant_id)s")
    volume = await (await conn.execute(sql.SQL(DAILY_SQL).format(scope=scope), params)).fetchall()
    cohort = await (await conn.execute(sql.SQL(COHORT_SQL).format(scope=scope), params)).fetchall()
    return Daily(days=days, timezone=tz, points=[
        Day(day=v["day"], sent=v["sent"], replies=v["replies"], contacted=c["contacted"], replied=c["replied"])
        for v, c in zip(volume, cohort, strict=True)])
