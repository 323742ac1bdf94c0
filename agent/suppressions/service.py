"""Suppression storage: addresses never emailed again, and closing the threads to them."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from email_validator import EmailNotValidError, validate_email
from psycopg import AsyncConnection

from agent.errors import InvalidInput
from agent.events import service as events
from agent.imports.tabular import read_table
from agent.threads import lifecycle
from agent.threads.lifecycle import CloseReason

EMAIL_COLUMNS = ("email", "e-mail", "email address", "recipient_email", "mail", "address")
MAX_IMPORT_ROWS = 50_000


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


async def close_open_threads(
    conn: AsyncConnection, *, user_id: UUID, emails: list[str], close_reason: str, summary: str, actor: str,
) -> list[UUID]:
    """Close the user's open threads to these addresses, each with an event (summary may name {email})."""
    closed = await lifecycle.close_to_addresses(conn, user_id=user_id, emails=emails,
                                                reason=CloseReason(close_reason))
    for row in closed:
        await events.record(conn, user_id=user_id, thread_id=row["id"], kind="closed", actor=actor,
                            summary=summary.format(email=row["recipient_email"]), detail={"reason": close_reason},
                            dedupe_key="closed")
    return [row["id"] for row in closed]


async def suppress(
    conn: AsyncConnection, *, user_id: UUID, email: str, reason: str, close_reason: str, actor: str, summary: str,
    source_thread_id: UUID | None = None,
) -> list[UUID]:
    """Suppress an address and close the user's open threads to it; returns the closed thread ids."""
    await add(conn, user_id=user_id, email=email, reason=reason, source_thread_id=source_thread_id)
    return await close_open_threads(conn, user_id=user_id, emails=[email], close_reason=close_reason,
                                    summary=summary, actor=actor)


async def suppress_many(
    conn: AsyncConnection, *, user_id: UUID, emails: list[str], reason: str, close_reason: str, actor: str,
    summary: str,
) -> tuple[list[str], list[UUID]]:
    """Suppress many addresses in one statement and close the open threads to them; (newly added, closed ids)."""
    unique = list(dict.fromkeys(e.strip().lower() for e in emails))
    cur = await conn.execute(
        "INSERT INTO suppressions (user_id, email, reason) SELECT %s, e, %s FROM unnest(%s::text[]) AS e"
        " ON CONFLICT (user_id, email) DO NOTHING RETURNING email",
        (user_id, reason, unique),
    )
    added = [row["email"] for row in await cur.fetchall()]
    closed = await close_open_threads(conn, user_id=user_id, emails=unique, close_reason=close_reason,
                                      summary=summary, actor=actor)
    return added, closed


def emails_from_csv(data: bytes, *, filename: str | None = None) -> list[tuple[int, str]]:
    """(row number, value) of the email column of an uploaded CSV/.xlsx; InvalidInput when it is not usable."""
    table = read_table(data, filename=filename, max_rows=MAX_IMPORT_ROWS)
    column = table.column(EMAIL_COLUMNS)
    if column is None:
        raise InvalidInput(f"The file needs an email column (one of: {', '.join(EMAIL_COLUMNS)}).")
    return [(row.number, row.cells[column] if column < len(row.cells) else "") for row in table.rows]


def normalize_email(value: str) -> str:
    """The address lowercased, or InvalidInput with the reason it is not an email address."""
    try:
        return validate_email(value, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise InvalidInput(f"{value or '(empty)'} is not an email address: {exc}") from exc
