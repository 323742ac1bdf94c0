"""Inbound mail kept for another try: unreadable, or answering our Message-ID with no thread to match yet."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import AsyncConnection

MAX_DELAY_SECONDS = 3600
REPORT_AFTER = 3
"""Attempts after which the failure is put on the thread's (or the user's) audit trail."""


async def keep(
    conn: AsyncConnection, *, user_id: UUID, transport: str, provider_message_id: str, reason: str, error: str,
    thread_id: UUID | None = None,
) -> int:
    """Record (or count again) a message to retry with backoff; returns its attempts so far."""
    cur = await conn.execute(
        "INSERT INTO inbound_pending (user_id, transport, provider_message_id, reason, thread_id, last_error,"
        " next_attempt_at) VALUES (%(u)s, %(t)s, %(m)s, %(r)s, %(th)s, %(e)s, now() + interval '1 minute')"
        " ON CONFLICT (user_id, transport, provider_message_id) DO UPDATE SET attempts = inbound_pending.attempts + 1,"
        " reason = excluded.reason, thread_id = coalesce(excluded.thread_id, inbound_pending.thread_id),"
        " last_error = excluded.last_error, next_attempt_at = now() + make_interval(secs => least(%(max)s,"
        " 60 * power(2, inbound_pending.attempts))) RETURNING attempts",
        {"u": user_id, "t": transport, "m": provider_message_id, "r": reason, "th": thread_id, "e": error[:500],
         "max": MAX_DELAY_SECONDS})
    return (await cur.fetchone())["attempts"]


async def resolved(conn: AsyncConnection, *, user_id: UUID, transport: str, provider_message_id: str) -> None:
    """The message was stored or is gone for good: nothing more to retry."""
    await conn.execute("DELETE FROM inbound_pending WHERE user_id = %s AND transport = %s AND provider_message_id = %s",
                       (user_id, transport, provider_message_id))


async def due(conn: AsyncConnection, *, user_id: UUID, transport: str, limit: int = 100) -> list[str]:
    """Provider ids of kept messages whose next try is due, oldest first."""
    cur = await conn.execute(
        "SELECT provider_message_id FROM inbound_pending WHERE user_id = %s AND transport = %s"
        " AND next_attempt_at <= now() ORDER BY first_seen_at LIMIT %s", (user_id, transport, limit))
    return [row["provider_message_id"] for row in await cur.fetchall()]


async def list_for_user(conn: AsyncConnection, *, user_id: UUID) -> list[dict[str, Any]]:
    """Everything kept for this user, for the dashboard and the reliability checks."""
    cur = await conn.execute("SELECT * FROM inbound_pending WHERE user_id = %s ORDER BY first_seen_at", (user_id,))
    return await cur.fetchall()
