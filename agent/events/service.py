"""Event storage."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb


def _insert(rows: int) -> str:
    """INSERT of `rows` events, each a row of `_values`; a dedupe_key already recorded is skipped."""
    return ("INSERT INTO events (user_id, thread_id, kind, summary, detail, actor, model, dedupe_key) VALUES "
            + ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s)"] * rows) + " ON CONFLICT DO NOTHING")


_INSERT = _insert(1)


def _values(user_id: UUID, thread_id: UUID | None, kind: str, summary: str = "", *,
            detail: dict[str, Any] | None = None, actor: str = "assistant", model: str | None = None,
            dedupe_key: str | None = None) -> tuple[Any, ...]:
    """One event's parameters for `_INSERT` (the defaults of every event)."""
    return user_id, thread_id, kind, summary, Jsonb(detail or {}), actor, model, dedupe_key


async def record(
    conn: AsyncConnection,
    *,
    user_id: UUID,
    thread_id: UUID | None,
    kind: str,
    summary: str = "",
    detail: dict[str, Any] | None = None,
    actor: str = "assistant",
    model: str | None = None,
    dedupe_key: str | None = None,
) -> bool:
    """Append an event; with a dedupe_key a re-run records it only once. True when written."""
    cur = await conn.execute(_INSERT + " RETURNING id", _values(
        user_id, thread_id, kind, summary, detail=detail, actor=actor, model=model, dedupe_key=dedupe_key))
    return await cur.fetchone() is not None


async def record_many(conn: AsyncConnection, *, user_id: UUID, thread_id: UUID | None,
                      entries: list[tuple[str, str, dict[str, Any]]]) -> None:
    """Append several events of a thread in one statement (each entry: kind, summary and record's fields)."""
    if not entries:
        return
    rows = [_values(user_id, thread_id, kind, summary, **fields) for kind, summary, fields in entries]
    await conn.execute(_insert(len(rows)), [v for row in rows for v in row])


async def list_for_thread(conn: AsyncConnection, *, user_id: UUID, thread_id: UUID) -> list[dict[str, Any]]:
    """A thread's events, oldest first."""
    cur = await conn.execute(
        "SELECT id, kind, summary, detail, actor, model, at FROM events "
        "WHERE thread_id = %s AND user_id = %s ORDER BY id",
        (thread_id, user_id),
    )
    return await cur.fetchall()
