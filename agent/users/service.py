"""User storage."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import AsyncConnection

from agent.errors import NotFound

LOCAL_EMAIL = "you@localhost"


async def ensure_local_user(conn: AsyncConnection) -> dict[str, Any]:
    """The single local-mode user, created on first use."""
    cur = await conn.execute(
        "INSERT INTO users (email, name, is_local) VALUES (%s, 'You', true) "
        "ON CONFLICT (lower(email)) DO UPDATE SET is_local = true RETURNING *",
        (LOCAL_EMAIL,),
    )
    return await cur.fetchone()


async def get(conn: AsyncConnection, *, user_id: UUID) -> dict[str, Any]:
    """One user, or NotFound."""
    cur = await conn.execute("SELECT * FROM users WHERE id = %s", (user_id,))
    row = await cur.fetchone()
    if row is None:
        raise NotFound("User not found.")
    return row


async def upsert_google_user(conn: AsyncConnection, *, sub: str, email: str, name: str) -> dict[str, Any]:
    """The user for a Google account, created or refreshed at sign-in."""
    cur = await conn.execute(
        "INSERT INTO users (email, name, google_sub) VALUES (%s, %s, %s) "
        "ON CONFLICT (google_sub) DO UPDATE SET email = excluded.email, name = excluded.name RETURNING *",
        (email, name, sub),
    )
    return await cur.fetchone()
