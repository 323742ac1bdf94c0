"""Exports: the threads a filter matches as CSV rows (streamed), and one thread's whole history."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from agent.events import service as events
from agent.threads import messages
from agent.threads import service as threads
from agent.threads.service import ThreadFilter

COLUMNS = ("recipient_email", "recipient_name", "company", "campaign", "persona", "status", "close_reason",
           "last_intent", "emails_sent", "replies", "first_email_at", "last_email_at", "started_at")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""A cell starting with one of these is read as a formula by spreadsheets (CSV injection): it gets a leading '."""
BATCH = 500

ROWS = """
SELECT t.recipient_email, t.recipient_name, t.recipient_company AS company, c.name AS campaign, a.name AS persona,
       t.status, t.close_reason, d.intent AS last_intent, coalesce(ms.sent, 0) AS emails_sent,
       coalesce(ms.replies, 0) AS replies, ms.first_at AS first_email_at, ms.last_at AS last_email_at,
       t.created_at AS started_at
FROM threads t
JOIN assistants a ON a.id = t.assistant_id
LEFT JOIN campaigns c ON c.id = t.campaign_id
LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE m.direction = 'out') AS sent,
           count(*) FILTER (WHERE m.direction = 'in' AND m.auto_reply IS NULL AND m.bounce IS NULL) AS replies,
           min(m.at) AS first_at, max(m.at) AS last_at
    FROM messages m WHERE m.thread_id = t.id) ms ON true
LEFT JOIN LATERAL (
    SELECT e.detail->>'intent' AS intent FROM events e
    WHERE e.thread_id = t.id AND e.kind = 'decision' ORDER BY e.id DESC LIMIT 1) d ON true
WHERE {where}
ORDER BY t.created_at DESC, t.id DESC"""


def safe_cell(value: Any) -> Any:
    """A value as a CSV cell that no spreadsheet runs as a formula; dates in ISO 8601, None as empty."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _csv(rows: Iterable[Iterable[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows([safe_cell(v) for v in row] for row in rows)
    return out.getvalue()


async def csv_chunks(conn: AsyncConnection, *, user_id: UUID, where: ThreadFilter) -> AsyncIterator[str]:
    """The CSV text in chunks: a UTF-8 BOM (so spreadsheets read Cyrillic right), the header, then the rows.

    Reads through a server-side cursor inside a transaction, so memory stays flat at any size.
    """
    clause, params = where.where(user_id)
    yield "\ufeff" + _csv([COLUMNS])
    async with conn.transaction(), conn.cursor(name="thread_export", row_factory=dict_row) as cur:
        await cur.execute(sql.SQL(ROWS).format(where=clause), params)
        while batch := await cur.fetchmany(BATCH):
            yield _csv([row[c] for c in COLUMNS] for row in batch)


async def history(conn: AsyncConnection, *, user_id: UUID, thread_id: UUID) -> dict[str, Any]:
    """Everything stored about one thread of the user: the thread, its emails, its events and its decisions."""
    thread = await threads.get(conn, user_id=user_id, thread_id=thread_id)
    cur = await conn.execute(
        "SELECT id, direction, author, transport, provider_message_id, provider_thread_id, message_id, in_reply_to,"
        " \"references\", from_addr, to_addr, subject, text, full_text, headers, auto_reply, bounce, language, at,"
        " processed_at FROM messages WHERE thread_id = %s AND user_id = %s ORDER BY at, id", (thread_id, user_id))
    msgs = [messages.whole(row) for row in await cur.fetchall()]
    evs = await events.list_for_thread(conn, user_id=user_id, thread_id=thread_id)
    cur = await conn.execute("SELECT a.id, a.name, c.id AS campaign_id, c.name AS campaign FROM assistants a"
                             " LEFT JOIN campaigns c ON c.id = %s WHERE a.id = %s", (thread.campaign_id,
                                                                                   thread.assistant_id))
    names = await cur.fetchone()
    fields = {k: v for k, v in thread.as_dict().items() if k != "user_id"}
    return {
        "thread": fields,
        "persona": {"id": names["id"], "name": names["name"]},
        "campaign": {"id": names["campaign_id"], "name": names["campaign"]} if names["campaign_id"] else None,
        "messages": msgs,
        "events": evs,
        "decisions": [e for e in evs if e["kind"] == "decision"],
    }
