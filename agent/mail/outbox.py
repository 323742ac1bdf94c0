"""The outbox: one row per send step, so a re-run never sends twice."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection

from agent import failpoints, metrics, unsubscribe
from agent.events import service as events
from agent.mail.mime import new_message_id
from agent.mail.models import OutgoingMessage, SentMessage
from agent.mail.sandbox import SandboxTransport
from agent.mail.transport import MailTransport
from agent.suppressions import service as suppressions
from agent.threads import messages
from agent.threads import service as threads
from agent.threads.models import ThreadRow

log = logging.getLogger(__name__)
MAX_REFERENCES = 20


@dataclass(frozen=True, slots=True)
class SendResult:
    """What became of one send step."""

    sent: bool
    message_id: str
    refused_reason: str | None = None
    withheld: str | None = None
    """The gate's reason not to send (nothing was claimed)."""


@dataclass(frozen=True, slots=True)
class Sender:
    """Who a thread's mail is from: fixed by the account and persona, never by the model."""

    address: str
    name: str
    domain: str
    unsubscribe_url: Callable[[dict[str, Any]], str] | None = None
    """The one-click unsubscribe link for a thread's recipient; None sends no List-Unsubscribe."""


def reply_subject(subject: str) -> str:
    """The subject of a message that continues a conversation."""
    return subject if subject.lower().startswith(("re:", "re :")) else f"Re: {subject}"


async def thread_by_message_ids(conn: AsyncConnection, *, user_id: UUID, message_ids: list[str]) -> UUID | None:
    """The thread whose outbox generated one of these Message-IDs, sent or not (the row precedes the send)."""
    cur = await conn.execute("SELECT thread_id FROM outbox WHERE user_id = %s AND message_id = ANY(%s) LIMIT 1",
                             (user_id, message_ids))
    row = await cur.fetchone()
    return row["thread_id"] if row else None


async def attempts(conn: AsyncConnection, *, thread_id: UUID, step: int) -> int:
    """How many times this step's email was handed to the transport (0 when it has no outbox row yet)."""
    cur = await conn.execute("SELECT attempts FROM outbox WHERE thread_id = %s AND step = %s", (thread_id, step))
    row = await cur.fetchone()
    return row["attempts"] if row else 0


Begin = Callable[[], AbstractAsyncContextManager[AsyncConnection]]
"""Opens one transaction (a pooled connection, committed on leaving the block)."""
Gate = Callable[[AsyncConnection, ThreadRow, int], Awaitable[str | None]]
"""Runs first in the transaction that claims a step, with the thread as it is now and the step's attempts so far;
a reason it returns withholds the step (nothing is claimed, what the gate wrote commits)."""


async def send_step(
    begin: Begin, transport: MailTransport, *, thread_id: UUID, step: int, kind: str, author: str,
    subject: str, text: str, sender: Sender, sent_at: datetime, gate: Gate | None = None,
) -> SendResult:
    """Send the message of one step exactly once (sent → skip; pending → reconcile, then send)."""
    # The attempt is committed before a provider is called, and the result recorded after it; the sandbox mailbox
    # lives in this database, so there the send and its record commit in the claiming transaction.
    in_database = isinstance(transport, SandboxTransport)
    async with begin() as conn:
        thread = await threads.get_any(conn, thread_id=thread_id)
        if gate is not None:
            withheld = await gate(conn, thread, await attempts(conn, thread_id=thread_id, step=step))
            if withheld:
                return SendResult(False, "", withheld=withheld)
        claimed = await _claim(conn, thread, step=step, kind=kind, author=author, subject=subject, text=text,
                               sender=sender)
        if isinstance(claimed, SendResult):
            return claimed
        row, tried, last = claimed
        msg = _outgoing(thread, row, last, sender)
        if in_database:
            found = await transport.find_sent_in(conn, row["message_id"]) if tried else None
            sent = found or await transport.send_in(conn, msg)
            failpoints.reached("after_transport_send")
            await _finalize(conn, thread=thread, step=step, msg=msg, sent=sent, author=author, kind=kind,
                            transport=transport.name, reconciled=found is not None, sent_at=sent_at)
    if not in_database:
        found = await transport.find_sent(row["message_id"]) if tried else None
        sent = found or await transport.send(msg)
        failpoints.reached("after_transport_send")
        async with begin() as conn:
            await _finalize(conn, thread=thread, step=step, msg=msg, sent=sent, author=author, kind=kind,
                            transport=transport.name, reconciled=found is not None, sent_at=sent_at)
    if found is not None:
        log.info("thread %s step %s: found already-sent message, not sending again", thread_id, step)
    metrics.email_sent(kind=kind)
    return SendResult(True, row["message_id"])


async def _claim(
    conn: AsyncConnection, thread: ThreadRow, *, step: int, kind: str, author: str, subject: str, text: str,
    sender: Sender,
) -> tuple[dict[str, Any], bool, dict[str, Any] | None] | SendResult:
    """The step's outbox row, locked and counted as one more attempt (with whether it was tried before and the
    thread's last message); or the step's result when it is already sent, refused, or the address is suppressed."""
    # One statement: a new row, or the step's existing row unchanged; either way locked (as FOR UPDATE) and returned.
    cur = await conn.execute(
        "INSERT INTO outbox (thread_id, step, user_id, kind, author, message_id, subject, text)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (thread_id, step) DO UPDATE SET step = outbox.step RETURNING *",
        (thread.id, step, thread.user_id, kind, author, new_message_id(sender.domain), subject, text),
    )
    row = await cur.fetchone()
    if row["status"] == "sent":
        return SendResult(True, row["message_id"])
    if row["status"] == "refused":
        return SendResult(False, row["message_id"], "refused earlier")
    reason = await suppressions.reason_for(conn, user_id=thread.user_id, email=thread.recipient_email)
    if reason:
        await conn.execute("UPDATE outbox SET status = 'refused' WHERE thread_id = %s AND step = %s", (thread.id, step))
        await events.record(conn, user_id=thread.user_id, thread_id=thread.id, kind="send_refused",
                            summary=f"Not sent: {thread.recipient_email} is suppressed ({reason}).",
                            detail={"step": step, "reason": reason}, dedupe_key=f"refused:{step}")
        return SendResult(False, row["message_id"], f"suppressed ({reason})")
    await conn.execute("UPDATE outbox SET attempts = attempts + 1 WHERE thread_id = %s AND step = %s", (thread.id, step))
    return row, row["attempts"] > 0, await messages.last_message(conn, thread_id=thread.id)


def _outgoing(thread: ThreadRow, row: dict[str, Any], last: dict[str, Any] | None, sender: Sender) -> OutgoingMessage:
    in_reply_to = last["message_id"] if last else None
    refs: tuple[str, ...] = ()
    if last:
        refs = tuple([*(last["references"] or []), last["message_id"]][-MAX_REFERENCES:])
    return OutgoingMessage(
        from_addr=sender.address, from_name=sender.name, to_addr=thread.recipient_email,
        to_name=thread.recipient_name, subject=row["subject"], text=row["text"], message_id=row["message_id"],
        in_reply_to=in_reply_to, references=refs, provider_thread_id=thread.provider_thread_id,
        extra_headers=unsubscribe.headers_for(sender.unsubscribe_url(thread)) if sender.unsubscribe_url else (),
    )


async def _finalize(
    conn: AsyncConnection, *, thread: ThreadRow, step: int, msg: OutgoingMessage, sent: SentMessage,
    author: str, kind: str, transport: str, reconciled: bool, sent_at: datetime,
) -> None:
    """Record the step as sent: the outbox row, the message, the conversation and the `sent` event."""
    await conn.execute(
        "UPDATE outbox SET status = 'sent', sent_at = %s, provider_message_id = %s"
        " WHERE thread_id = %s AND step = %s",
        (sent_at, sent.provider_message_id, thread.id, step),
    )
    await messages.insert_outbound(conn, user_id=thread.user_id, thread_id=thread.id, transport=transport,
                                   msg=msg, sent=sent, author=author)
    if thread.provider_thread_id is None or thread.subject is None:  # the first send: both are set once
        await threads.record_conversation(conn, thread_id=thread.id, provider_thread_id=sent.provider_thread_id,
                                          subject=msg.subject)
    await events.record(conn, user_id=thread.user_id, thread_id=thread.id, kind="sent", actor=author,
                        summary=f"Sent {kind.replace('_', ' ')} to {msg.to_addr}.",
                        detail={"step": step, "message_id": msg.message_id, "reconciled": reconciled},
                        dedupe_key=f"sent:{step}")
