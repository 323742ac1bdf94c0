"""Message storage: each email stored once, matched to its thread.

`full_text` (the whole body, quoted history included) is stored only when it differs from `text` (the new part):
an email we sent, and most replies, have nothing else, so the column is '' and every reader here gets `text` back.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from agent.guard import language
from agent.mail.models import InboundMessage, OutgoingMessage, SentMessage


async def insert_outbound(
    conn: AsyncConnection, *, user_id: UUID, thread_id: UUID, transport: str, msg: OutgoingMessage,
    sent: SentMessage, author: str,
) -> None:
    """Record an email we sent (idempotent on the provider id)."""
    await conn.execute(
        "INSERT INTO messages (user_id, thread_id, direction, author, transport, provider_message_id,"
        " provider_thread_id, message_id, in_reply_to, \"references\", from_addr, to_addr, subject, text,"
        " language) VALUES (%s, %s, 'out', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (user_id, transport, provider_message_id) DO NOTHING",
        (user_id, thread_id, author, transport, sent.provider_message_id, sent.provider_thread_id, msg.message_id,
         msg.in_reply_to, list(msg.references), msg.from_addr, msg.to_addr, msg.subject, msg.text,
         language.detect(msg.text)),
    )


async def insert_inbound(
    conn: AsyncConnection, *, user_id: UUID, thread_id: UUID | None, transport: str, msg: InboundMessage,
) -> UUID | None:
    """Store a received email once; returns its id, or None when it was already stored."""
    cur = await conn.execute(
        "INSERT INTO messages (user_id, thread_id, direction, author, transport, provider_message_id,"
        " provider_thread_id, message_id, in_reply_to, \"references\", from_addr, to_addr, subject, text,"
        " full_text, headers, auto_reply, bounce, at, language)"
        " VALUES (%s, %s, 'in', 'recipient', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (user_id, transport, provider_message_id) DO NOTHING RETURNING id",
        (user_id, thread_id, transport, msg.provider_message_id, msg.provider_thread_id, msg.message_id,
         msg.in_reply_to, list(msg.references), msg.from_addr, ", ".join(msg.to_addrs), msg.subject, msg.text,
         "" if msg.full_text == msg.text else msg.full_text, Jsonb(msg.headers), msg.auto_reply, msg.bounce, msg.received_at,
         language.detect(msg.text or msg.full_text)),
    )
    row = await cur.fetchone()
    return row["id"] if row else None


async def thread_by_message_ids(conn: AsyncConnection, *, user_id: UUID, message_ids: list[str]) -> UUID | None:
    """The thread of the newest stored email with one of these Message-IDs."""
    cur = await conn.execute(
        "SELECT thread_id FROM messages WHERE user_id = %s AND message_id = ANY(%s) AND thread_id IS NOT NULL"
        " ORDER BY at DESC LIMIT 1",
        (user_id, message_ids),
    )
    row = await cur.fetchone()
    return row["thread_id"] if row else None


def whole(row: dict[str, Any]) -> dict[str, Any]:
    """A stored email with its full text (kept only when it differs from the text) filled in."""
    if "full_text" in row and not row["full_text"]:
        row["full_text"] = row["text"]
    return row


async def list_for_thread(conn: AsyncConnection, *, user_id: UUID, thread_id: UUID) -> list[dict[str, Any]]:
    """A thread's emails, oldest first."""
    cur = await conn.execute(
        "SELECT id, direction, author, subject, text, full_text, message_id, provider_thread_id, \"references\","
        " from_addr, auto_reply, bounce, headers, at, processed_at, language"
        " FROM messages WHERE thread_id = %s AND user_id = %s ORDER BY at, id",
        (thread_id, user_id),
    )
    return [whole(row) for row in await cur.fetchall()]


async def unprocessed_inbound(conn: AsyncConnection, *, thread_id: UUID) -> list[dict[str, Any]]:
    """Inbound emails the graph has not read yet, oldest first."""
    cur = await conn.execute(
        "SELECT * FROM messages WHERE thread_id = %s AND direction = 'in' AND processed_at IS NULL ORDER BY at, id",
        (thread_id,),
    )
    return [whole(row) for row in await cur.fetchall()]


async def has_unread_reply(conn: AsyncConnection, *, thread_id: UUID) -> bool:
    """True when an inbound email waits to be read: it always comes before anything the assistant would send."""
    cur = await conn.execute(
        "SELECT 1 FROM messages WHERE thread_id = %s AND direction = 'in' AND processed_at IS NULL LIMIT 1",
        (thread_id,),
    )
    return await cur.fetchone() is not None


async def mark_processed(conn: AsyncConnection, *, message_ids: list[UUID]) -> None:
    """Mark inbound emails as read by the graph."""
    if message_ids:
        await conn.execute(
            "UPDATE messages SET processed_at = coalesce(processed_at, now()) WHERE id = ANY(%s)", (message_ids,)
        )


async def last_outbound(conn: AsyncConnection, *, thread_id: UUID) -> dict[str, Any] | None:
    """The newest email we sent in a thread."""
    cur = await conn.execute(
        "SELECT * FROM messages WHERE thread_id = %s AND direction = 'out' ORDER BY at DESC, id DESC LIMIT 1",
        (thread_id,),
    )
    row = await cur.fetchone()
    return None if row is None else whole(row)


async def last_message(conn: AsyncConnection, *, thread_id: UUID) -> dict[str, Any] | None:
    """The newest email in a thread, either direction."""
    cur = await conn.execute(
        "SELECT * FROM messages WHERE thread_id = %s ORDER BY at DESC, id DESC LIMIT 1", (thread_id,)
    )
    row = await cur.fetchone()
    return None if row is None else whole(row)
