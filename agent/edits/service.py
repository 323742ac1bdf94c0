"""Storage of the user's rewrites: (original draft, edited text or feedback) pairs per persona."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import AsyncConnection

from agent.errors import NotFound

EXAMPLES = 3
"""How many of the latest rewrites the drafting prompts show."""
MAX_CHARS = 4000
"""Longest text kept of either side of a pair."""
NOT_FOUND = "Edit not found."
COLUMNS = "id, assistant_id, thread_id, kind, draft_kind, original, revised, created_at"


async def record(
    conn: AsyncConnection, *, user_id: UUID, assistant_id: UUID, thread_id: UUID | None, kind: str, draft_kind: str,
    original: str, revised: str, dedupe_key: str | None = None,
) -> bool:
    """Keep one pair ('edit': the user's text, 'feedback': what they asked for); True when stored (re-runs are not)."""
    if kind not in ("edit", "feedback"):
        raise ValueError(f"unknown edit kind {kind!r}")
    if not revised.strip() or original.strip() == revised.strip():
        return False
    cur = await conn.execute(
        "INSERT INTO draft_edits (user_id, assistant_id, thread_id, kind, draft_kind, original, revised, dedupe_key)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING id",
        (user_id, assistant_id, thread_id, kind, draft_kind, original[:MAX_CHARS], revised[:MAX_CHARS], dedupe_key),
    )
    return await cur.fetchone() is not None


async def latest(conn: AsyncConnection, *, assistant_id: UUID, limit: int = EXAMPLES) -> list[dict[str, Any]]:
    """The persona's newest pairs, oldest of them first (as prompt examples)."""
    cur = await conn.execute(
        f"SELECT {COLUMNS} FROM draft_edits WHERE assistant_id = %s ORDER BY created_at DESC, id DESC LIMIT %s",
        (assistant_id, limit))
    return list(reversed(await cur.fetchall()))


async def list_for_assistant(conn: AsyncConnection, *, user_id: UUID, assistant_id: UUID) -> list[dict[str, Any]]:
    """Every pair of this user's persona, newest first."""
    cur = await conn.execute(
        f"SELECT {COLUMNS} FROM draft_edits WHERE user_id = %s AND assistant_id = %s ORDER BY created_at DESC, id DESC",
        (user_id, assistant_id))
    return await cur.fetchall()


async def delete(conn: AsyncConnection, *, user_id: UUID, assistant_id: UUID, edit_id: int) -> None:
    """Forget one pair; NotFound when it is not this user's persona's."""
    cur = await conn.execute("DELETE FROM draft_edits WHERE id = %s AND user_id = %s AND assistant_id = %s"
                             " RETURNING id", (edit_id, user_id, assistant_id))
    if await cur.fetchone() is None:
        raise NotFound(NOT_FOUND)
