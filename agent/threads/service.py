"""Thread storage."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection, sql
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from agent.assistants import service as assistants
from agent.errors import Conflict, InvalidInput, NotFound, translate_db_errors
from agent.events import service as events
from agent.suppressions import service as suppressions
from agent.threads.lifecycle import Status, WaitKind
from agent.threads.models import THREAD_COLUMNS, ThreadCreate, ThreadRow

NOT_FOUND = "Thread not found."
UPDATABLE = {"subject", "provider_thread_id", "transport"}
"""Columns anyone may set; status, wait, park and closing change only through agent.threads.lifecycle."""


async def create(conn: AsyncConnection, *, user_id: UUID, data: ThreadCreate, transport: str) -> ThreadRow:
    """Store a new thread after the checks that need no model: persona, suppression, duplicates."""
    assistant = await assistants.get(conn, user_id=user_id, assistant_id=data.assistant_id)
    if assistant.archived_at is not None:
        raise InvalidInput("That assistant is archived; unarchive it or choose another.")
    email = str(data.recipient_email).lower()
    reason = await suppressions.reason_for(conn, user_id=user_id, email=email)
    if reason:
        raise Conflict(f"{email} is on your suppression list ({reason}); no email will be sent to it.")
    with translate_db_errors(f"{email} is already in an open thread."):
        cur = conn.cursor(row_factory=class_row(ThreadRow))
        await cur.execute(
            "INSERT INTO threads (user_id, assistant_id, recipient_email, recipient_name, recipient_company,"
            " context, recipient_timezone, recipient_language, transport)"
            f" VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING {THREAD_COLUMNS}",
            (user_id, data.assistant_id, email, data.recipient_name, data.recipient_company, data.context,
             data.recipient_timezone, data.recipient_language or None, transport),
        )
        row = await cur.fetchone()
    await events.record(conn, user_id=user_id, thread_id=row.id, kind="created", actor="user",
                        summary=f"Outreach to {email} started.")
    return row


async def get(conn: AsyncConnection, *, user_id: UUID, thread_id: UUID, for_update: bool = False) -> ThreadRow:
    """One thread of this user, or NotFound."""
    query = f"SELECT {THREAD_COLUMNS} FROM threads WHERE id = %s AND user_id = %s" + (" FOR UPDATE" if for_update else "")
    cur = conn.cursor(row_factory=class_row(ThreadRow))
    await cur.execute(query, (thread_id, user_id))
    row = await cur.fetchone()
    if row is None:
        raise NotFound(NOT_FOUND)
    return row


async def get_any(conn: AsyncConnection, *, thread_id: UUID) -> ThreadRow:
    """A thread by id for background work, which runs on behalf of its owner."""
    cur = conn.cursor(row_factory=class_row(ThreadRow))
    await cur.execute(f"SELECT {THREAD_COLUMNS} FROM threads WHERE id = %s", (thread_id,))
    row = await cur.fetchone()
    if row is None:
        raise NotFound(NOT_FOUND)
    return row


async def by_provider_thread(conn: AsyncConnection, *, user_id: UUID, provider_thread_id: str) -> UUID | None:
    """The newest thread of the user in this provider conversation (Gmail threadId)."""
    cur = await conn.execute(
        "SELECT id FROM threads WHERE user_id = %s AND provider_thread_id = %s ORDER BY created_at DESC LIMIT 1",
        (user_id, provider_thread_id))
    row = await cur.fetchone()
    return row["id"] if row else None


async def update(conn: AsyncConnection, *, thread_id: UUID, **fields: Any) -> None:
    """Set the given columns of a thread."""
    unknown = set(fields) - UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    values = {k: Jsonb(v) if isinstance(v, dict) else v for k, v in fields.items()}
    query = sql.SQL("UPDATE threads SET {sets}, updated_at = now() WHERE id = %(id)s").format(
        sets=sql.SQL(", ").join(sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in values)
    )
    await conn.execute(query, {**values, "id": thread_id})


async def record_conversation(
    conn: AsyncConnection, *, thread_id: UUID, provider_thread_id: str | None, subject: str,
) -> None:
    """After the first send: the provider's conversation id and the subject replies keep (set once)."""
    await conn.execute(
        "UPDATE threads SET provider_thread_id = coalesce(provider_thread_id, %s), subject = coalesce(subject, %s),"
        " updated_at = now() WHERE id = %s", (provider_thread_id, subject, thread_id))


async def delete(conn: AsyncConnection, *, thread_id: UUID) -> None:
    """Remove a thread that never started (its first job could not be queued)."""
    await conn.execute("DELETE FROM threads WHERE id = %s", (thread_id,))


async def parked_with_reason(conn: AsyncConnection, *, user_id: UUID, prefix: str) -> list[UUID]:
    """The user's threads parked with a reason that starts with `prefix`."""
    cur = await conn.execute(
        "SELECT id FROM threads WHERE user_id = %s AND status = %s AND park_reason LIKE %s",
        (user_id, Status.paused.value, prefix.replace("%", "\\%").replace("_", "\\_") + "%"))
    return [row["id"] for row in await cur.fetchall()]


async def open_to(conn: AsyncConnection, *, user_id: UUID, emails: list[str]) -> set[str]:
    """Which of these (lower-case) addresses already have an open thread of the user."""
    cur = await conn.execute(
        "SELECT lower(recipient_email) AS email FROM threads WHERE user_id = %s AND status <> %s"
        " AND lower(recipient_email) = ANY(%s)", (user_id, Status.closed.value, emails))
    return {row["email"] for row in await cur.fetchall()}


async def set_send_estimates(conn: AsyncConnection, *, thread_ids: list[UUID], send_at: list[Any]) -> None:
    """When each thread's queued email is expected to go (None: nothing queued)."""
    await conn.execute(
        "UPDATE threads t SET send_at = v.at FROM unnest(%s::uuid[], %s::timestamptz[]) AS v(id, at) WHERE t.id = v.id",
        (thread_ids, send_at))


async def parked_ids(conn: AsyncConnection) -> list[UUID]:
    """Threads the system parked (paused with a reason), for a retry at startup."""
    cur = await conn.execute("SELECT id FROM threads WHERE status = %s AND park_reason IS NOT NULL",
                             (Status.paused.value,))
    return [row["id"] for row in await cur.fetchall()]


DUE_FOLLOW_UPS = (
    "SELECT follow_up_due_at, id, wait_id FROM threads WHERE status = %(waiting)s AND follow_up_due_at <= now()"
    " AND follow_up_due_at >= %(due)s AND (follow_up_due_at, id) > (%(due)s, %(id)s) AND wait_kind = %(reply)s"
    " ORDER BY follow_up_due_at, id LIMIT %(limit)s")
FIRST_DUE = (datetime.min.replace(tzinfo=UTC), UUID(int=0))
"""Where paging through due follow-ups starts."""


async def due_follow_ups(conn: AsyncConnection, *, limit: int, after: tuple[datetime, UUID] = FIRST_DUE,
                         ) -> list[tuple[datetime, UUID, str]]:
    """(due time, thread, wait id) of threads waiting for a reply whose follow-up is due, earliest first, after `after`.

    threads_follow_up_due_idx serves it: only due rows are read, however many threads wait.
    """
    cur = await conn.execute(DUE_FOLLOW_UPS, {"waiting": Status.waiting.value, "reply": WaitKind.reply.value,
                                              "limit": limit, "due": after[0], "id": after[1]})
    return [(row["follow_up_due_at"], row["id"], row["wait_id"]) for row in await cur.fetchall()]


async def waiting_with_unread_replies(conn: AsyncConnection, *, older_than_seconds: int) -> list[UUID]:
    """Threads in a wait that accepts replies, with a reply unread for a while (its resume was lost)."""
    cur = await conn.execute(
        "SELECT DISTINCT t.id FROM threads t JOIN messages m ON m.thread_id = t.id"
        " WHERE (t.status = ANY(%s) OR (t.status = %s AND t.wait_kind = %s))"
        " AND m.direction = 'in' AND m.processed_at IS NULL AND m.at < now() - make_interval(secs => %s)",
        ([Status.waiting.value, Status.awaiting_approval.value], Status.active.value, WaitKind.send_slot.value,
         older_than_seconds))
    return [row["id"] for row in await cur.fetchall()]


def encode_cursor(created_at: datetime, thread_id: UUID) -> str:
    """An opaque keyset cursor."""
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{thread_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    """The position a cursor names; InvalidInput when it is not one of ours."""
    try:
        at, tid = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(at), UUID(tid)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("Invalid cursor.") from exc


MESSAGE_DOCUMENT = "to_tsvector('russian'::regconfig, left(m.subject || ' ' || m.text, 100000))"
"""What a message's search covers: its subject and its own text (not the quoted history), at most 100,000
characters (a tsvector is limited to 1 MB, so a huge body never makes an insert fail). The `russian` configuration
stems Cyrillic words with the Russian stemmer and ASCII words with the English one, so both languages match their
word forms. migrations/010_search.sql indexes exactly this expression."""


@dataclass(frozen=True, slots=True)
class ThreadFilter:
    """What the thread list, bulk actions and the export select: the same filters everywhere."""

    status: Status | None = None
    search: str | None = None
    """The recipient's name or address (substring), or words in the subjects and bodies of the thread's emails."""
    assistant_id: UUID | None = None
    campaign_id: UUID | None = None
    created_before: datetime | None = None
    """Only threads created up to this moment (a bulk action acts on what its confirmation counted)."""

    def where(self, user_id: UUID) -> tuple[sql.Composed, dict[str, Any]]:
        """The WHERE clause over `threads t` and its parameters."""
        clauses = [sql.SQL("t.user_id = %(user_id)s")]
        params: dict[str, Any] = {"user_id": user_id}
        if self.status:
            clauses.append(sql.SQL("t.status = %(status)s"))
            params["status"] = self.status.value
        if self.assistant_id:
            clauses.append(sql.SQL("t.assistant_id = %(assistant_id)s"))
            params["assistant_id"] = self.assistant_id
        if self.campaign_id:
            clauses.append(sql.SQL("t.campaign_id = %(campaign_id)s"))
            params["campaign_id"] = self.campaign_id
        if self.created_before:
            clauses.append(sql.SQL("t.created_at <= %(created_before)s"))
            params["created_before"] = self.created_before
        if self.search:
            clauses.append(sql.SQL(
                "(t.recipient_email ILIKE %(q)s OR t.recipient_name ILIKE %(q)s OR t.id IN ("
                "SELECT m.thread_id FROM messages m WHERE m.user_id = %(user_id)s AND m.thread_id IS NOT NULL"
                " AND {doc} @@ websearch_to_tsquery('russian'::regconfig, %(words)s)))").format(
                doc=sql.SQL(MESSAGE_DOCUMENT)))
            params["q"] = "%" + self.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            params["words"] = self.search
        return sql.SQL(" AND ").join(clauses), params


def list_query(user_id: UUID, where: ThreadFilter, *, limit: int, cursor: str | None = None,
               ) -> tuple[sql.Composed, dict[str, Any]]:
    """The list's query (bench/search.py explains it)."""
    clause, params = where.where(user_id)
    params["limit"] = limit + 1
    if cursor:
        params["c_at"], params["c_id"] = decode_cursor(cursor)
        clause = sql.SQL("{} AND (t.created_at, t.id) < (%(c_at)s, %(c_id)s)").format(clause)
    cols = sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in THREAD_COLUMNS.split(", "))
    query = sql.SQL("SELECT {cols} FROM threads t WHERE {w} ORDER BY t.created_at DESC, t.id DESC LIMIT %(limit)s")
    return query.format(cols=cols, w=clause), params


async def list_page(
    conn: AsyncConnection,
    *,
    user_id: UUID,
    status: Status | None = None,
    search: str | None = None,
    assistant_id: UUID | None = None,
    limit: int = 50,
    cursor: str | None = None,
    campaign_id: UUID | None = None,
) -> tuple[list[ThreadRow], str | None]:
    """A page of threads, newest first, by keyset pagination (fast at any depth)."""
    query, params = list_query(user_id, ThreadFilter(status=status, search=search, assistant_id=assistant_id,
                                                     campaign_id=campaign_id), limit=limit, cursor=cursor)
    cur = conn.cursor(row_factory=class_row(ThreadRow))
    await cur.execute(query, params)
    rows = await cur.fetchall()
    next_cursor = encode_cursor(rows[limit - 1].created_at, rows[limit - 1].id) if len(rows) > limit else None
    return rows[:limit], next_cursor


async def count_matching(conn: AsyncConnection, *, user_id: UUID, where: ThreadFilter) -> int:
    """How many of the user's threads the filter matches."""
    clause, params = where.where(user_id)
    cur = await conn.execute(sql.SQL("SELECT count(*) AS n FROM threads t WHERE {}").format(clause), params)
    return (await cur.fetchone())["n"]


async def ids_matching(conn: AsyncConnection, *, user_id: UUID, where: ThreadFilter, limit: int) -> list[UUID]:
    """The ids of (at most `limit` of) the threads the filter matches, newest first."""
    clause, params = where.where(user_id)
    cur = await conn.execute(sql.SQL("SELECT t.id FROM threads t WHERE {} ORDER BY t.created_at DESC, t.id DESC"
                                     " LIMIT %(limit)s").format(clause), {**params, "limit": limit})
    return [row["id"] for row in await cur.fetchall()]


async def recipients(conn: AsyncConnection, *, user_id: UUID, thread_ids: list[UUID]) -> dict[UUID, dict[str, Any]]:
    """Id, address, name and status of these threads of the user (for per-thread outcomes)."""
    cur = await conn.execute("SELECT id, recipient_email, recipient_name, status FROM threads"
                             " WHERE user_id = %s AND id = ANY(%s)", (user_id, thread_ids))
    return {row["id"]: row for row in await cur.fetchall()}


async def counts_by_status(conn: AsyncConnection, *, user_id: UUID) -> dict[str, int]:
    """How many threads are in each status."""
    cur = await conn.execute("SELECT status, count(*) AS n FROM threads WHERE user_id = %s GROUP BY status", (user_id,))
    return {row["status"]: row["n"] for row in await cur.fetchall()}
