"""Mailbox storage: the encrypted Gmail grant, the connection status and the history cursor."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection

from agent.events import service as events
from agent.keyring import KeyRing
from agent.threads import lifecycle
from agent.threads import service as threads

DISCONNECTED_PREFIX = "Gmail disconnected"


@dataclass(frozen=True, slots=True)
class Grant:
    """A Gmail grant: what lets us act for the user while they are away. Never log it."""

    refresh_token: str
    scopes: tuple[str, ...]
    granted_at: str

    def __repr__(self) -> str:
        return f"Grant(scopes={self.scopes!r}, granted_at={self.granted_at!r}, refresh_token=<hidden>)"


def encrypt_grant(keyring: KeyRing, grant: Grant) -> str:
    """The grant as a Fernet token."""
    return keyring.encrypt(json.dumps({"refresh_token": grant.refresh_token, "scopes": list(grant.scopes),
                                       "granted_at": grant.granted_at}))


def decrypt_grant(keyring: KeyRing, token: str) -> Grant:
    """The grant from its Fernet token."""
    data = json.loads(keyring.decrypt(token))
    return Grant(data["refresh_token"], tuple(data["scopes"]), data["granted_at"])


def disconnected_reason(why: str) -> str:
    """The reason shown on a mailbox and on the threads it parks."""
    return f"{DISCONNECTED_PREFIX}: {why}. Reconnect at /login."


async def get(conn: AsyncConnection, *, mailbox_id: UUID) -> dict[str, Any] | None:
    """One mailbox by id."""
    cur = await conn.execute("SELECT * FROM mailboxes WHERE id = %s", (mailbox_id,))
    return await cur.fetchone()


async def for_user(conn: AsyncConnection, *, user_id: UUID) -> dict[str, Any] | None:
    """The user's Gmail mailbox, if they ever connected one."""
    cur = await conn.execute("SELECT * FROM mailboxes WHERE user_id = %s AND provider = 'gmail'", (user_id,))
    return await cur.fetchone()


async def by_email(conn: AsyncConnection, *, email: str) -> dict[str, Any] | None:
    """The Gmail mailbox with this address (what a Pub/Sub notification names)."""
    cur = await conn.execute("SELECT * FROM mailboxes WHERE provider = 'gmail' AND lower(email) = lower(%s)", (email,))
    return await cur.fetchone()


async def save_grant(
    conn: AsyncConnection, *, user_id: UUID, email: str, grant_enc: str | None, scopes: list[str],
    granted_at: datetime, status: str, reason: str | None,
) -> dict[str, Any]:
    """Create or refresh the user's mailbox after a sign-in; a missing new grant keeps the stored one."""
    cur = await conn.execute(
        "INSERT INTO mailboxes (user_id, email, grant_enc, scopes, granted_at, status, disconnect_reason)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (user_id, provider) DO UPDATE SET email = excluded.email,"
        " grant_enc = coalesce(excluded.grant_enc, mailboxes.grant_enc),"
        " scopes = CASE WHEN excluded.grant_enc IS NULL THEN mailboxes.scopes ELSE excluded.scopes END,"
        " granted_at = CASE WHEN excluded.grant_enc IS NULL THEN mailboxes.granted_at ELSE excluded.granted_at END,"
        " status = excluded.status, disconnect_reason = excluded.disconnect_reason, updated_at = now()"
        " RETURNING *",
        (user_id, email, grant_enc, scopes, granted_at, status, reason),
    )
    return await cur.fetchone()


async def advance_cursor(conn: AsyncConnection, *, mailbox_id: UUID, history_id: int) -> None:
    """Move the history cursor forward (never back)."""
    await conn.execute(
        "UPDATE mailboxes SET history_id = greatest(coalesce(history_id, 0), %s), synced_at = now(), updated_at = now()"
        " WHERE id = %s",
        (history_id, mailbox_id),
    )


async def set_watch(conn: AsyncConnection, *, mailbox_id: UUID, expiration: datetime | None) -> None:
    """Record a users.watch registration (or its end)."""
    await conn.execute(
        "UPDATE mailboxes SET watch_expiration = %s, watch_renewed_at = CASE WHEN %s::timestamptz IS NULL THEN NULL"
        " ELSE now() END, updated_at = now() WHERE id = %s",
        (expiration, expiration, mailbox_id),
    )


async def disconnect(conn: AsyncConnection, *, mailbox_id: UUID, reason: str, drop_grant: bool = False) -> int:
    """Mark the mailbox disconnected and park its open Gmail threads with the reason; returns threads parked."""
    cur = await conn.execute(
        "UPDATE mailboxes SET status = 'disconnected', disconnect_reason = %s, watch_expiration = NULL,"
        " grant_enc = CASE WHEN %s THEN NULL ELSE grant_enc END, updated_at = now()"
        " WHERE id = %s RETURNING user_id",
        (reason, drop_grant, mailbox_id),
    )
    row = await cur.fetchone()
    if row is None:
        return 0
    parked = await lifecycle.park_mailbox_threads(conn, user_id=row["user_id"], reason=reason)
    for thread_id in parked:
        await events.record(conn, user_id=row["user_id"], thread_id=thread_id, kind="parked", actor="system",
                            summary=f"Parked: {reason}", detail={"reason": "mailbox_disconnected"})
    return len(parked)


async def parked_by_disconnect(conn: AsyncConnection, *, user_id: UUID) -> list[UUID]:
    """Threads of the user parked because Gmail was disconnected."""
    return await threads.parked_with_reason(conn, user_id=user_id, prefix=DISCONNECTED_PREFIX)


async def claim_due_polls(conn: AsyncConnection, *, every_seconds: int) -> list[UUID]:
    """Connected mailboxes not polled for every_seconds, claimed so one process polls each."""
    cur = await conn.execute(
        "UPDATE mailboxes SET polled_at = now() WHERE status = 'connected' AND grant_enc IS NOT NULL"
        " AND (polled_at IS NULL OR polled_at <= now() - make_interval(secs => %s)) RETURNING id",
        (every_seconds,),
    )
    return [r["id"] for r in await cur.fetchall()]


async def due_watch_renewals(conn: AsyncConnection) -> list[UUID]:
    """Connected mailboxes whose watch was not renewed in the last day."""
    cur = await conn.execute(
        "SELECT id FROM mailboxes WHERE status = 'connected' AND grant_enc IS NOT NULL"
        " AND (watch_renewed_at IS NULL OR watch_renewed_at < now() - interval '1 day'"
        " OR watch_expiration < now() + interval '1 day')"
    )
    return [r["id"] for r in await cur.fetchall()]


async def rotate_secrets(conn: AsyncConnection, *, keyring: KeyRing) -> int:
    """Re-encrypt every stored grant with the current key; returns how many."""
    cur = await conn.execute("SELECT id, grant_enc FROM mailboxes WHERE grant_enc IS NOT NULL FOR UPDATE")
    rows = await cur.fetchall()
    for row in rows:
        await conn.execute("UPDATE mailboxes SET grant_enc = %s, updated_at = now() WHERE id = %s",
                           (keyring.rotate(row["grant_enc"]), row["id"]))
    return len(rows)
