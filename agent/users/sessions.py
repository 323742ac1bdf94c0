"""Sign-in sessions stored server-side: the cookie holds a random id, the database its hash and timestamps."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from uuid import UUID

from psycopg import AsyncConnection

TOUCH_EVERY = timedelta(minutes=1)  # last_seen_at is refreshed at most this often, not on every request


def _hash(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode()).digest()


async def create(conn: AsyncConnection, *, user_id: UUID, max_age: timedelta) -> str:
    """A new session for the user (their expired ones are dropped); returns the id the cookie carries."""
    await conn.execute("DELETE FROM sessions WHERE user_id = %s AND created_at <= now() - %s", (user_id, max_age))
    session_id = secrets.token_urlsafe(32)
    await conn.execute("INSERT INTO sessions (id_hash, user_id) VALUES (%s, %s)", (_hash(session_id), user_id))
    return session_id


async def resolve(conn: AsyncConnection, *, session_id: str, idle: timedelta, max_age: timedelta) -> UUID | None:
    """The session's user while it is live (refreshing its idle clock); an ended or expired session gives None."""
    key = _hash(session_id)
    cur = await conn.execute(
        "SELECT user_id, last_seen_at <= now() - %s OR created_at <= now() - %s AS expired,"
        " last_seen_at <= now() - %s AS stale FROM sessions WHERE id_hash = %s",
        (idle, max_age, TOUCH_EVERY, key))
    row = await cur.fetchone()
    if row is None:
        return None
    if row["expired"]:
        await conn.execute("DELETE FROM sessions WHERE id_hash = %s", (key,))
        return None
    if row["stale"]:
        await conn.execute("UPDATE sessions SET last_seen_at = now() WHERE id_hash = %s", (key,))
    return row["user_id"]


async def end(conn: AsyncConnection, *, session_id: str) -> None:
    """End one session (logout)."""
    await conn.execute("DELETE FROM sessions WHERE id_hash = %s", (_hash(session_id),))


async def end_all(conn: AsyncConnection, *, user_id: UUID) -> int:
    """End every session of the user (Gmail disconnected); returns how many ended."""
    cur = await conn.execute("DELETE FROM sessions WHERE user_id = %s", (user_id,))
    return cur.rowcount
