"""Suppression storage."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import AsyncConnection


async def add(
    conn: AsyncConnection, *, user_id: UUID, email: str, reason: str, source_thread_id: UUID | None = None
) -> None:
    """Suppress an address (idempotent; the first reason is kept)."""
    await conn.execute(
        "INSERT INTO suppressions (user_id, email, reason, source_thread_id) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (user_id, email) DO NOTHING",
        (user_id, email.strip().lower(), reason, source_thread_id),
    )


async def remove(conn: AsyncConnection, *, user_id: UUID, email: str) -> bool:
    """Lift a suppression; True when one existed."""
    cur = await conn.execute(
        "DELETE FROM suppressions WHERE user_id = %s AND email = %s RETURNING email",
        (user_id, email.strip().lower()),
    )
    return await cur.fetchone() is not None


async def reason_for(conn: AsyncConnection, *, user_id: UUID, email: str) -> str | None:
    """Why the address is suppressed, or None."""
    cur = await conn.execute(
        "SELECT reason FROM suppressions WHERE user_id = %s AND email = %s", (user_id, email.strip().lower())
    )
    row = await cur.fetchone()
    return row["reason"] if row else None


async def list_for_user(conn: AsyncConnection, *, user_id: UUID) -> list[dict[str, Any]]:
    """The user's suppressions, newest first."""
    cur = await conn.execute(
        "SELECT email, reason, source_thread_id, created_at FROM suppressions WHERE user_id = %s "
        "ORDER BY created_at DESC",
        (user_id,),
    )
    return await cur.fetchall()
