"""A thread's lifecycle: its statuses, waits, events and closing, and the only code that changes them.

Every write of a thread's status, wait, park reason or closing goes through a function here; the runner, the
graph, human actions, suppressions, the company stop and a disconnected mailbox all call these.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import AsyncRowFactory
from psycopg.types.json import Jsonb


class Status(StrEnum):
    """Where a thread stands."""

    active = "active"
    awaiting_approval = "awaiting_approval"
    waiting = "waiting"
    needs_human = "needs_human"
    paused = "paused"
    closed = "closed"


class WaitKind(StrEnum):
    """What an interrupted thread is waiting for."""

    reply = "reply"
    approval = "approval"
    human = "human"
    send_slot = "send_slot"


class EventType(StrEnum):
    """What resumes a thread: mail, timers, the send queue and human actions."""

    reply = "reply"
    followup_due = "followup_due"
    approve = "approve"
    reject = "reject"
    regenerate = "regenerate"
    takeover = "takeover"
    human_reply = "human_reply"
    handback = "handback"
    send_slot = "send_slot"
    limit = "limit"
    resume = "resume"
    retry = "retry"


class CloseReason(StrEnum):
    """Why a thread closed."""

    stopped = "stopped"
    no_reply = "no_reply"
    not_interested = "not_interested"
    unsubscribed = "unsubscribed"
    bounced = "bounced"
    suppressed = "suppressed"
    company_declined = "company_declined"
    closed = "closed"


WAIT_STATUS: dict[WaitKind, Status] = {
    WaitKind.reply: Status.waiting, WaitKind.approval: Status.awaiting_approval,
    WaitKind.human: Status.needs_human, WaitKind.send_slot: Status.active,
}
"""The status a thread shows while it waits."""

ACCEPTS: dict[WaitKind, frozenset[EventType]] = {
    WaitKind.reply: frozenset({EventType.reply, EventType.followup_due, EventType.takeover}),
    WaitKind.approval: frozenset({EventType.approve, EventType.reject, EventType.regenerate, EventType.takeover,
                                  EventType.reply}),
    WaitKind.human: frozenset({EventType.human_reply, EventType.handback}),
    WaitKind.send_slot: frozenset({EventType.send_slot, EventType.limit, EventType.reply, EventType.takeover}),
}
"""The events each wait accepts; the runner refuses the rest, and the graph routes exactly these."""

OPEN: tuple[Status, ...] = tuple(s for s in Status if s is not Status.closed)
PAUSABLE = frozenset({Status.active, Status.waiting, Status.awaiting_approval, Status.needs_human})
STOPPABLE = frozenset(OPEN)
PARKED_ON_DISCONNECT = (Status.waiting, Status.awaiting_approval, Status.needs_human)

# What closing means for a row; the one placeholder is the reason.
_CLOSED = ("status = 'closed', close_reason = %s, wait_id = NULL, wait_kind = NULL, pending_draft = NULL,"
           " park_reason = NULL, follow_up_due_at = NULL, updated_at = now()")


def waiting_status(wait_kind: str | None) -> Status:
    """The status of a thread in this wait (active when it is not waiting)."""
    return WAIT_STATUS.get(WaitKind(wait_kind), Status.active) if wait_kind else Status.active


async def enter_wait(
    conn: AsyncConnection, *, thread_id: UUID, wait_id: str, kind: WaitKind, pending_draft: dict[str, Any] | None = None,
    follow_up_due_at: Any = None,
) -> None:
    """Record the wait the graph entered; a pause or stop that landed meanwhile keeps its status."""
    await conn.execute(
        "UPDATE threads SET wait_id = %s, wait_kind = %s, pending_draft = %s, follow_up_due_at = %s,"
        " updated_at = now(), status = CASE WHEN status IN ('paused', 'closed') THEN status ELSE %s END"
        " WHERE id = %s",
        (wait_id, kind.value, Jsonb(pending_draft) if pending_draft is not None else None, follow_up_due_at,
         WAIT_STATUS[kind].value, thread_id),
    )


async def leave_wait(conn: AsyncConnection, *, thread_id: UUID) -> None:
    """The wait was answered: its draft and timer are no longer pending."""
    await conn.execute("UPDATE threads SET pending_draft = NULL, follow_up_due_at = NULL, updated_at = now()"
                       " WHERE id = %s", (thread_id,))


async def start_running(conn: AsyncConnection, *, thread_id: UUID, columns: str,
                        row_factory: AsyncRowFactory[Any]) -> Any:
    """Mark the thread active before the graph runs: the row's `columns` as they are now (in the caller's
    `row_factory`); None when a pause or stop landed first."""
    cur = conn.cursor(row_factory=row_factory)
    await cur.execute(f"UPDATE threads SET status = 'active', updated_at = now()"  # columns: the caller's constant
                      f" WHERE id = %s AND status NOT IN ('paused', 'closed') RETURNING {columns}", (thread_id,))
    return await cur.fetchone()


async def ran_cleanly(conn: AsyncConnection, *, thread_id: UUID) -> None:
    """A run succeeded: the failure count starts again."""
    await conn.execute("UPDATE threads SET failures = 0 WHERE id = %s AND failures <> 0", (thread_id,))


async def park(conn: AsyncConnection, *, thread_id: UUID, reason: str, failures: int) -> bool:
    """Pause the thread with the system's reason; False when it closed meanwhile."""
    cur = await conn.execute(
        "UPDATE threads SET status = 'paused', park_reason = %s, failures = %s, updated_at = now()"
        " WHERE id = %s AND status <> 'closed' RETURNING id", (reason, failures, thread_id))
    return await cur.fetchone() is not None


async def unpause(conn: AsyncConnection, *, thread_id: UUID, wait_kind: str | None) -> None:
    """Leave a pause (the user's or the system's): back to the status of the wait it is in."""
    await conn.execute("UPDATE threads SET status = %s, park_reason = NULL, updated_at = now() WHERE id = %s",
                       (waiting_status(wait_kind).value, thread_id))


async def pause(conn: AsyncConnection, *, thread_id: UUID) -> None:
    """The user holds the thread: nothing is sent until it resumes."""
    await conn.execute("UPDATE threads SET status = 'paused', park_reason = NULL, updated_at = now() WHERE id = %s",
                       (thread_id,))


async def park_mailbox_threads(conn: AsyncConnection, *, user_id: UUID, reason: str) -> list[UUID]:
    """A disconnected mailbox parks the user's open Gmail threads with the reason; returns their ids."""
    cur = await conn.execute(
        "UPDATE threads SET status = 'paused', park_reason = %s, updated_at = now()"
        " WHERE user_id = %s AND transport = 'gmail' AND status = ANY(%s) RETURNING id",
        (reason, user_id, [s.value for s in PARKED_ON_DISCONNECT]))
    return [row["id"] for row in await cur.fetchall()]


async def close(conn: AsyncConnection, *, thread_id: UUID, reason: CloseReason | str) -> None:
    """Close one thread for good with its reason."""
    await conn.execute(f"UPDATE threads SET {_CLOSED} WHERE id = %s", (str(reason), thread_id))


async def close_to_addresses(
    conn: AsyncConnection, *, user_id: UUID, emails: Iterable[str], reason: CloseReason,
) -> list[dict[str, Any]]:
    """Close the user's open threads to these addresses; returns (id, recipient_email) of each."""
    cur = await conn.execute(
        f"UPDATE threads SET {_CLOSED}"
        " WHERE user_id = %s AND lower(recipient_email) = ANY(%s) AND status <> 'closed' RETURNING id, recipient_email",
        (reason.value, user_id, [e.strip().lower() for e in emails]))
    return await cur.fetchall()


async def close_at_domain(
    conn: AsyncConnection, *, user_id: UUID, domain: str, except_thread_id: UUID, reason: CloseReason,
) -> list[dict[str, Any]]:
    """Close the user's other open threads to addresses at this domain; returns (id, recipient_email) of each."""
    cur = await conn.execute(
        f"UPDATE threads SET {_CLOSED}"
        " WHERE user_id = %s AND id <> %s AND status <> 'closed' AND lower(split_part(recipient_email, '@', 2)) = %s"
        " RETURNING id, recipient_email",
        (reason.value, user_id, except_thread_id, domain))
    return await cur.fetchall()
