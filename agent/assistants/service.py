"""Persona storage: keyword-only functions that take a connection; callers own transactions."""

from __future__ import annotations

from uuid import UUID

from psycopg import AsyncConnection, sql

from agent.assistants.models import FIELD_NAMES, Assistant, AssistantFields, AssistantUpdate
from agent.errors import NotFound, translate_db_errors

NOT_FOUND = "Assistant not found."


async def create(conn: AsyncConnection, *, user_id: UUID, fields: AssistantFields) -> Assistant:
    """Store a new persona."""
    data = fields.model_dump(mode="json")
    query = sql.SQL("INSERT INTO assistants (user_id, {cols}) VALUES (%(user_id)s, {vals}) RETURNING *").format(
        cols=sql.SQL(", ").join(map(sql.Identifier, FIELD_NAMES)),
        vals=sql.SQL(", ").join(sql.Placeholder(name) for name in FIELD_NAMES),
    )
    with translate_db_errors():
        cur = await conn.execute(query, {**data, "user_id": user_id})
        return Assistant.model_validate(await cur.fetchone())


async def get(conn: AsyncConnection, *, user_id: UUID, assistant_id: UUID) -> Assistant:
    """One persona of this user, or NotFound."""
    cur = await conn.execute(
        "SELECT * FROM assistants WHERE id = %s AND user_id = %s", (assistant_id, user_id)
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFound(NOT_FOUND)
    return Assistant.model_validate(row)


async def list_for_user(conn: AsyncConnection, *, user_id: UUID, include_archived: bool = False) -> list[Assistant]:
    """The user's personas, newest first."""
    cur = await conn.execute(
        "SELECT * FROM assistants WHERE user_id = %s AND (%s OR archived_at IS NULL) ORDER BY created_at DESC",
        (user_id, include_archived),
    )
    return [Assistant.model_validate(row) for row in await cur.fetchall()]


async def update(conn: AsyncConnection, *, user_id: UUID, assistant_id: UUID, changes: AssistantUpdate) -> Assistant:
    """Change the fields that were sent."""
    data = changes.model_dump(mode="json", exclude_unset=True)
    data = {k: v for k, v in data.items() if v is not None}
    if not data:
        return await get(conn, user_id=user_id, assistant_id=assistant_id)
    query = sql.SQL(
        "UPDATE assistants SET {sets}, updated_at = now() WHERE id = %(id)s AND user_id = %(user_id)s RETURNING *"
    ).format(sets=sql.SQL(", ").join(sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in data))
    with translate_db_errors():
        cur = await conn.execute(query, {**data, "id": assistant_id, "user_id": user_id})
        row = await cur.fetchone()
    if row is None:
        raise NotFound(NOT_FOUND)
    return Assistant.model_validate(row)


async def archive(conn: AsyncConnection, *, user_id: UUID, assistant_id: UUID) -> Assistant:
    """Archive a persona: it starts no new threads; its threads go on."""
    cur = await conn.execute(
        "UPDATE assistants SET archived_at = coalesce(archived_at, now()), updated_at = now() "
        "WHERE id = %s AND user_id = %s RETURNING *",
        (assistant_id, user_id),
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFound(NOT_FOUND)
    return Assistant.model_validate(row)
