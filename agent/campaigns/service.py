"""Campaign storage and insight: SQL over campaigns, threads, messages, events and the send queue."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import AsyncConnection

from agent.assistants import service as assistants
from agent.campaigns.models import Campaign, CampaignDetail, Funnel, Queue, QueueDay
from agent.errors import NotFound
from agent.stats import service as stats
from agent.stats.service import HUMAN_REPLY, POSITIVE_INTENTS
from agent.threads.lifecycle import CloseReason, Status

NOT_FOUND = "Campaign not found."
MEETING = "meeting_request"
HANDED_EVENTS = ["escalated", "handed_back"]  # handed to you (by the assistant or by taking over and handing back)

# Per thread: whether its first email went out and whether a person answered (one pass over the emails).
_THREAD_MAIL = f"""
    SELECT m.thread_id, bool_or(m.direction = 'out') AS sent, bool_or({HUMAN_REPLY}) AS replied
    FROM messages m JOIN t ON t.id = m.thread_id WHERE m.user_id = %(user_id)s GROUP BY m.thread_id"""

CAMPAIGN_SQL = f"""
WITH c AS (SELECT c.id, c.assistant_id, c.name, c.source, c.created_at FROM campaigns c
           WHERE c.user_id = %(user_id)s {{where}}),
t AS (SELECT t.id, t.campaign_id, t.status FROM threads t JOIN c ON c.id = t.campaign_id WHERE t.user_id = %(user_id)s),
m AS ({_THREAD_MAIL}),
s AS (SELECT t.campaign_id, count(*) AS threads, count(*) FILTER (WHERE t.status <> %(closed)s) AS open,
             count(*) FILTER (WHERE m.sent) AS sent, count(*) FILTER (WHERE m.replied) AS replied
      FROM t LEFT JOIN m ON m.thread_id = t.id GROUP BY t.campaign_id)
SELECT c.id, c.assistant_id, a.name AS assistant_name, c.name, c.source, c.created_at,
       coalesce(s.threads, 0) AS threads, coalesce(s.open, 0) AS open, coalesce(s.sent, 0) AS sent,
       coalesce(s.replied, 0) AS replied
FROM c JOIN assistants a ON a.id = c.assistant_id LEFT JOIN s ON s.campaign_id = c.id
ORDER BY c.created_at DESC, c.id DESC LIMIT %(limit)s"""

FUNNEL_SQL = f"""
WITH t AS (SELECT t.id, t.status FROM threads t WHERE t.user_id = %(user_id)s AND t.campaign_id = %(campaign_id)s),
m AS ({_THREAD_MAIL}),
e AS (SELECT e.thread_id,
             bool_or(e.kind = 'decision' AND e.detail->>'intent' = ANY(%(positive)s)) AS positive,
             bool_or(e.kind = 'decision' AND e.detail->>'intent' = %(meeting)s) AS meeting,
             bool_or(e.kind = ANY(%(handed)s)) AS handed
      FROM events e JOIN t ON t.id = e.thread_id
      WHERE e.user_id = %(user_id)s AND (e.kind = 'decision' OR e.kind = ANY(%(handed)s)) GROUP BY e.thread_id),
f AS (SELECT t.status, coalesce(m.sent, false) AS sent, coalesce(m.replied, false) AS replied,
             coalesce(e.positive, false) AS positive, coalesce(e.meeting, false) AS meeting,
             (t.status = %(human)s OR coalesce(e.handed, false)) AS handed
      FROM t LEFT JOIN m ON m.thread_id = t.id LEFT JOIN e ON e.thread_id = t.id)
SELECT count(*) AS threads, count(*) FILTER (WHERE NOT sent AND status <> %(closed)s) AS queued,
       count(*) FILTER (WHERE sent) AS sent, count(*) FILTER (WHERE replied) AS replied,
       count(*) FILTER (WHERE positive) AS positive, count(*) FILTER (WHERE handed OR meeting) AS handed_or_meeting,
       count(*) FILTER (WHERE meeting) AS meeting, count(*) FILTER (WHERE status = %(closed)s) AS closed
FROM f"""

QUEUE_SQL = """
SELECT count(*) FILTER (WHERE t.status <> %(paused)s) AS queued, count(*) FILTER (WHERE t.status = %(paused)s) AS held,
       min(q.estimated_at) FILTER (WHERE t.status <> %(paused)s) AS next_at,
       max(q.estimated_at) FILTER (WHERE t.status <> %(paused)s) AS last_at,
       count(*) FILTER (WHERE t.status <> %(paused)s AND q.estimated_at IS NULL) AS unplanned
FROM send_queue q JOIN threads t ON t.id = q.thread_id
WHERE q.user_id = %(user_id)s AND t.user_id = %(user_id)s AND t.campaign_id = %(campaign_id)s
  AND q.dispatched_at IS NULL AND t.status <> %(closed)s"""

QUEUE_DAYS_SQL = """
SELECT (q.estimated_at AT TIME ZONE %(tz)s)::date AS day, count(*) AS count, min(q.estimated_at) AS first_at
FROM send_queue q JOIN threads t ON t.id = q.thread_id
WHERE q.user_id = %(user_id)s AND t.user_id = %(user_id)s AND t.campaign_id = %(campaign_id)s
  AND q.dispatched_at IS NULL AND q.estimated_at IS NOT NULL AND t.status <> ALL(%(held)s)
GROUP BY 1 ORDER BY 1"""


async def create(conn: AsyncConnection, *, user_id: UUID, assistant_id: UUID, name: str, source: str) -> Campaign:
    """Store a new campaign of one of the user's personas."""
    persona = await assistants.get(conn, user_id=user_id, assistant_id=assistant_id)
    cur = await conn.execute(
        "INSERT INTO campaigns (user_id, assistant_id, name, source) VALUES (%s, %s, %s, %s)"
        " RETURNING id, assistant_id, name, source, created_at", (user_id, assistant_id, name, source))
    return Campaign.model_validate({**await cur.fetchone(), "assistant_name": persona.name})


async def attach(conn: AsyncConnection, *, user_id: UUID, campaign_id: UUID, thread_id: UUID) -> None:
    """Make a thread of the user part of the user's campaign (a thread belongs to at most one)."""
    await conn.execute(
        "UPDATE threads t SET campaign_id = c.id FROM campaigns c WHERE t.id = %s AND t.user_id = %s"
        " AND c.id = %s AND c.user_id = t.user_id AND t.campaign_id IS NULL", (thread_id, user_id, campaign_id))


def _params(user_id: UUID, **extra: Any) -> dict[str, Any]:
    return {"user_id": user_id, "closed": Status.closed.value, **extra}


async def list_for_user(conn: AsyncConnection, *, user_id: UUID, assistant_id: UUID | None = None,
                        limit: int = 200) -> list[Campaign]:
    """The user's campaigns, newest first, with their thread, sent and reply counts."""
    where = "AND c.assistant_id = %(assistant_id)s" if assistant_id else ""
    cur = await conn.execute(CAMPAIGN_SQL.format(where=where), _params(user_id, assistant_id=assistant_id, limit=limit))
    return [Campaign.model_validate(r) for r in await cur.fetchall()]


async def get(conn: AsyncConnection, *, user_id: UUID, campaign_id: UUID) -> Campaign:
    """One campaign of this user, or NotFound (another user's id is not found either)."""
    cur = await conn.execute(CAMPAIGN_SQL.format(where="AND c.id = %(campaign_id)s"),
                             _params(user_id, campaign_id=campaign_id, limit=1))
    row = await cur.fetchone()
    if row is None:
        raise NotFound(NOT_FOUND)
    return Campaign.model_validate(row)


async def funnel(conn: AsyncConnection, *, user_id: UUID, campaign_id: UUID) -> Funnel:
    """Queued → sent → replied → positive → handed to you / meeting → closed, by reason."""
    cur = await conn.execute(FUNNEL_SQL, _params(user_id, campaign_id=campaign_id, positive=list(POSITIVE_INTENTS),
                                                 meeting=MEETING, human=Status.needs_human.value,
                                                 handed=HANDED_EVENTS))
    found = Funnel.model_validate(await cur.fetchone())
    cur = await conn.execute(
        "SELECT coalesce(close_reason, %s) AS reason, count(*) AS n FROM threads"
        " WHERE user_id = %s AND campaign_id = %s AND status = %s GROUP BY 1 ORDER BY 2 DESC, 1",
        (CloseReason.closed.value, user_id, campaign_id, Status.closed.value))
    found.closed_by_reason = {r["reason"]: r["n"] for r in await cur.fetchall()}
    return found


async def queue(conn: AsyncConnection, *, user_id: UUID, campaign_id: UUID, tz: str) -> Queue:
    """What goes out when: the campaign's queued emails, their estimated times and how many go on each day."""
    params = _params(user_id, campaign_id=campaign_id, paused=Status.paused.value, tz=tz,
                     held=[Status.closed.value, Status.paused.value])
    found = await (await conn.execute(QUEUE_SQL, params)).fetchone()
    days = await (await conn.execute(QUEUE_DAYS_SQL, params)).fetchall()
    return Queue.model_validate({**found, "days": [QueueDay.model_validate(d) for d in days], "timezone": tz})


async def status_counts(conn: AsyncConnection, *, user_id: UUID, campaign_id: UUID) -> dict[str, int]:
    """How many of the campaign's threads are in each status."""
    cur = await conn.execute("SELECT status, count(*) AS n FROM threads WHERE user_id = %s AND campaign_id = %s"
                             " GROUP BY status", (user_id, campaign_id))
    return {r["status"]: r["n"] for r in await cur.fetchall()}


async def detail(conn: AsyncConnection, *, user_id: UUID, campaign_id: UUID) -> CampaignDetail:
    """The campaign with its funnel, queue, reply rate and thread counts."""
    campaign = await get(conn, user_id=user_id, campaign_id=campaign_id)
    tz = await stats.mailbox_timezone(conn, user_id=user_id)
    found = await funnel(conn, user_id=user_id, campaign_id=campaign_id)
    return CampaignDetail(campaign=campaign, funnel=found, queue=await queue(conn, user_id=user_id,
                                                                             campaign_id=campaign_id, tz=tz),
                          reply_rate=found.replied / found.sent if found.sent else None,
                          status_counts=await status_counts(conn, user_id=user_id, campaign_id=campaign_id))


async def threads_in(conn: AsyncConnection, *, user_id: UUID, campaign_id: UUID) -> list[dict[str, Any]]:
    """(id, recipient_email, status) of every thread of the user's campaign, oldest first."""
    cur = await conn.execute("SELECT id, recipient_email, status FROM threads WHERE user_id = %s AND campaign_id = %s"
                             " ORDER BY created_at, id", (user_id, campaign_id))
    return await cur.fetchall()


async def discard_if_empty(conn: AsyncConnection, *, user_id: UUID, campaign_id: UUID) -> bool:
    """Remove a campaign none of whose rows started (all skipped); True when it was removed."""
    cur = await conn.execute(
        "DELETE FROM campaigns c WHERE c.id = %s AND c.user_id = %s"
        " AND NOT EXISTS (SELECT 1 FROM threads t WHERE t.campaign_id = c.id) RETURNING id", (campaign_id, user_id))
    return await cur.fetchone() is not None
