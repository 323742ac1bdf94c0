"""The send queue: emails wait here for a slot; the dispatcher releases them one at a time."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection

from agent.events import service as events
from agent.sending import settings as sending_settings
from agent.sending.planner import Queued, Window, plan
from agent.threads import service as threads
from agent.threads.lifecycle import EventType, Status

log = logging.getLogger(__name__)
PRIORITY = {"reply": 0, "human": 0, "follow_up": 1, "first": 2}

PENDING_SQL = """
SELECT q.thread_id, q.step, q.kind, q.priority, q.wait_id, q.enqueued_at, t.recipient_timezone,
       a.send_days, a.send_start, a.send_end, a.timezone
FROM send_queue q JOIN threads t ON t.id = q.thread_id JOIN assistants a ON a.id = t.assistant_id
WHERE q.user_id = %s AND q.dispatched_at IS NULL AND t.status <> ALL(%s)
ORDER BY q.priority, q.enqueued_at, q.thread_id
LIMIT %s
"""
HELD = [Status.closed.value, Status.paused.value]  # statuses whose queued email does not go
PLAN_DEPTH = 500  # emails planned (and given an estimate) per pass; the rest wait their turn


@dataclass(frozen=True, slots=True)
class Release:
    """A queued email whose slot has come (or whose thread hit its daily limit)."""

    thread_id: UUID
    wait_id: str
    event: EventType
    """send_slot | limit."""


@dataclass(frozen=True, slots=True)
class Dispatch:
    """What one dispatcher pass decided."""

    released: Release | None
    wake_at: datetime | None
    """When the dispatcher should look again (None: nothing is queued)."""


async def enqueue(conn: AsyncConnection, *, user_id: UUID, thread_id: UUID, step: int, kind: str, wait_id: str) -> None:
    """Queue one email (idempotent per thread step)."""
    await conn.execute(
        "INSERT INTO send_queue (thread_id, step, user_id, kind, priority, wait_id) VALUES (%s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (thread_id, step) DO NOTHING",
        (thread_id, step, user_id, kind, PRIORITY[kind], wait_id),
    )


async def ahead_in_line(conn: AsyncConnection, *, thread_id: UUID, up_to: int) -> int:
    """How many queued emails of the mailbox go before or beside the thread's queued one (same priority), up to
    `up_to`: an index range scan of that many rows at most."""
    cur = await conn.execute(
        "SELECT count(*) AS n FROM (SELECT 1 FROM send_queue q JOIN send_queue o ON o.user_id = q.user_id"
        " AND o.dispatched_at IS NULL AND o.thread_id <> q.thread_id AND o.priority <= q.priority"
        " WHERE q.thread_id = %s AND q.dispatched_at IS NULL LIMIT %s) ahead", (thread_id, up_to))
    row = await cur.fetchone()
    return int(row["n"])


async def replan(conn: AsyncConnection, *, thread_id: UUID, wait_id: str) -> bool:
    """Put a released but unsent email back in line (its thread was paused): True when there was one."""
    cur = await conn.execute(
        "UPDATE send_queue SET dispatched_at = NULL, released_as = NULL WHERE thread_id = %s AND wait_id = %s"
        " AND dispatched_at IS NOT NULL RETURNING user_id", (thread_id, wait_id))
    return await cur.fetchone() is not None


async def withdraw(conn: AsyncConnection, *, thread_id: UUID, step: int) -> None:
    """Remove an email that will not be sent (a reply came first, the human took over)."""
    await conn.execute("DELETE FROM send_queue WHERE thread_id = %s AND step = %s", (thread_id, step))
    await threads.set_send_estimates(conn, thread_ids=[thread_id], send_at=[None])


def _window(row: dict[str, Any]) -> Window:
    zone = row["recipient_timezone"] or row["timezone"]
    return Window(frozenset(row["send_days"]), row["send_start"], row["send_end"], ZoneInfo(zone))


async def _sent_since(conn: AsyncConnection, *, user_id: UUID, since: datetime,
                      thread_ids: list[UUID]) -> tuple[int, dict[UUID, int]]:
    """Real sends since `since`: their total, and the count of each of these threads (one row per thread that sent,
    plus one for all the others, so a busy day costs no more rows than the queue holds)."""
    cur = await conn.execute(
        "SELECT CASE WHEN o.thread_id = ANY(%s::uuid[]) THEN o.thread_id END AS thread_id, count(*) AS n"
        " FROM outbox o JOIN threads t ON t.id = o.thread_id"
        " WHERE o.user_id = %s AND o.status = 'sent' AND o.sent_at >= %s AND t.transport <> 'sandbox' GROUP BY 1",
        (thread_ids, user_id, since),
    )
    rows = await cur.fetchall()
    return sum(row["n"] for row in rows), {row["thread_id"]: row["n"] for row in rows if row["thread_id"] is not None}


async def bounce_rate(conn: AsyncConnection, *, user_id: UUID, window: int, since: datetime | None) -> tuple[float, int]:
    """Share of the last `window` real sends whose thread bounced, and how many sends were counted."""
    cur = await conn.execute(
        "SELECT count(*) AS n, count(*) FILTER (WHERE t.close_reason = 'bounced') AS bounced FROM ("
        "  SELECT o.thread_id FROM outbox o JOIN threads t ON t.id = o.thread_id"
        "  WHERE o.user_id = %s AND o.status = 'sent' AND t.transport <> 'sandbox'"
        "  AND (%s::timestamptz IS NULL OR o.sent_at >= %s) ORDER BY o.sent_at DESC LIMIT %s) s"
        " JOIN threads t ON t.id = s.thread_id",
        (user_id, since, since, window),
    )
    row = await cur.fetchone()
    return (row["bounced"] / row["n"] if row["n"] else 0.0), row["n"]


async def _check_bounces(conn: AsyncConnection, *, user_id: UUID, row: dict[str, Any]) -> str | None:
    if row["outreach_paused_reason"]:
        return row["outreach_paused_reason"]
    rate, counted = await bounce_rate(conn, user_id=user_id, window=row["bounce_window"],
                                      since=row["outreach_resumed_at"])
    if counted < sending_settings.MIN_SENDS_FOR_BOUNCE_RATE or rate <= float(row["bounce_threshold"]):
        return None
    reason = (f"{rate:.0%} of your last {counted} emails bounced (threshold {float(row['bounce_threshold']):.0%}). "
              "New outreach is paused to protect your mailbox; replies and follow-ups continue. Check your list, "
              "then resume outreach in Settings.")
    await conn.execute("UPDATE sending_settings SET outreach_paused_reason = %s WHERE user_id = %s", (reason, user_id))
    await events.record(conn, user_id=user_id, thread_id=None, kind="outreach_paused", summary=reason,
                        actor="system", detail={"bounce_rate": rate, "sends": counted})
    return reason


async def _store_estimates(conn: AsyncConnection, pending: list[dict[str, Any]], slots: dict[Any, datetime]) -> None:
    """Record when each queued email is expected to go (shown by the API and the dashboard), in two statements."""
    ids = [r["thread_id"] for r in pending]
    steps = [r["step"] for r in pending]
    times = [slots.get((r["thread_id"], r["step"])) for r in pending]
    await conn.execute(
        "UPDATE send_queue q SET estimated_at = v.at FROM unnest(%s::uuid[], %s::int[], %s::timestamptz[])"
        " AS v(thread_id, step, at) WHERE q.thread_id = v.thread_id AND q.step = v.step", (ids, steps, times))
    await threads.set_send_estimates(conn, thread_ids=ids, send_at=times)


async def dispatch_once(conn: AsyncConnection, *, user_id: UUID, now: datetime, rng: random.Random,
                        prefer: UUID | None = None) -> Dispatch:
    """Release at most one queued email whose slot has come, and estimate when the others will go.

    When several slots have come (no spacing, or a pass that was late), `prefer`'s email goes first: the run that
    makes the pass for its own answer sends it itself. Releasing another thread's instead would cost that thread a
    resume job and leave this one's for the next pass, and under load the two runs would keep crossing like this.
    """
    row = await sending_settings.get_row(conn, user_id=user_id)
    day_tz = ZoneInfo(row["timezone"])
    today = now.astimezone(day_tz).replace(hour=0, minute=0, second=0, microsecond=0)
    paused = await _check_bounces(conn, user_id=user_id, row=row)
    pending = [r for r in await (await conn.execute(PENDING_SQL, (user_id, HELD, PLAN_DEPTH))).fetchall()
               if not (paused and r["kind"] == "first")]
    sent_today, per_thread = await _sent_since(conn, user_id=user_id, since=today,
                                               thread_ids=[r["thread_id"] for r in pending])
    over = next((r for r in pending if per_thread.get(r["thread_id"], 0) >= row["per_thread_daily_max"]), None)
    if over is not None:
        await conn.execute("UPDATE send_queue SET dispatched_at = %s, released_as = %s WHERE thread_id = %s"
                           " AND step = %s", (now, EventType.limit.value, over["thread_id"], over["step"]))
        return Dispatch(Release(over["thread_id"], over["wait_id"], EventType.limit), now)
    spacing = timedelta(seconds=(row["spacing_min_seconds"] + row["spacing_max_seconds"]) / 2)
    slots = plan([Queued((r["thread_id"], r["step"]), _window(r)) for r in pending], now=now,
                 not_before=row["next_send_not_before"], cap=sending_settings.effective_cap(row),
                 sent_today=sent_today, day_tz=day_tz, spacing=spacing)
    await _store_estimates(conn, pending, slots)
    ready = [r for r in pending if (at := slots.get((r["thread_id"], r["step"]))) and at <= now]
    due = next((r for r in ready if r["thread_id"] == prefer), ready[0] if ready else None)
    if due is None:
        wake = min(slots.values(), default=None)
        return Dispatch(None, wake)
    gap = timedelta(seconds=rng.uniform(row["spacing_min_seconds"], row["spacing_max_seconds"]))
    await conn.execute("UPDATE send_queue SET dispatched_at = %s, released_as = %s WHERE thread_id = %s AND step = %s",
                       (now, EventType.send_slot.value, due["thread_id"], due["step"]))
    await conn.execute("UPDATE sending_settings SET next_send_not_before = %s WHERE user_id = %s",
                       (now + gap, user_id))
    later = [at for key, at in slots.items() if key != (due["thread_id"], due["step"])]
    wake = max(now + gap, min(later)) if later else None
    return Dispatch(Release(due["thread_id"], due["wait_id"], EventType.send_slot), wake)


async def users_with_pending(conn: AsyncConnection) -> list[UUID]:
    """Mailboxes with queued email whose thread may still send."""
    cur = await conn.execute(
        "SELECT DISTINCT q.user_id FROM send_queue q JOIN threads t ON t.id = q.thread_id"
        " WHERE q.dispatched_at IS NULL AND t.status <> ALL(%s)", (HELD,))
    return [row["user_id"] for row in await cur.fetchall()]


async def lost_releases(conn: AsyncConnection, *, older_than_seconds: int = 120) -> list[dict[str, Any]]:
    """Released emails whose thread still waits for that slot: the resume (`released_as`) was lost and is owed."""
    cur = await conn.execute(
        "SELECT q.thread_id, q.wait_id, q.released_as FROM send_queue q JOIN threads t ON t.id = q.thread_id"
        " WHERE q.dispatched_at < now() - make_interval(secs => %s) AND t.wait_id = q.wait_id AND t.status = %s",
        (older_than_seconds, Status.active.value))
    return await cur.fetchall()


async def released_for(conn: AsyncConnection, *, thread_id: UUID, wait_id: str) -> EventType | None:
    """What the thread's email queued at `wait_id` was released for (send_slot | limit), or None: not released."""
    cur = await conn.execute("SELECT released_as FROM send_queue WHERE thread_id = %s AND wait_id = %s",
                             (thread_id, wait_id))  # set exactly while the email is released (NULL when queued)
    row = await cur.fetchone()
    return EventType(row["released_as"]) if row and row["released_as"] else None
