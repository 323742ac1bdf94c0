"""The sandbox transport: a local mailbox in Postgres, the default until Gmail is connected."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from agent.mail.mime import build_message, new_message_id, parse_message
from agent.mail.models import InboundMessage, OutgoingMessage, SentMessage
from agent.mail.transport import TransportError
from agent.threads.models import ThreadRow

NAME = "sandbox"


class SandboxTransport:
    """Outbound mail lands in the sandbox_mail table; replies are posted there as the recipient."""

    name = NAME

    def __init__(self, pool: AsyncConnectionPool, *, user_id: UUID) -> None:
        self._pool = pool
        self._user_id = user_id

    async def send(self, msg: OutgoingMessage) -> SentMessage:
        """Store the rendered message as sent."""
        async with self._pool.connection() as conn:
            return await self.send_in(conn, msg)

    async def send_in(self, conn: AsyncConnection, msg: OutgoingMessage) -> SentMessage:
        """Store the rendered message as sent, in the caller's transaction (the outbox's, so both commit together)."""
        raw = build_message(msg)
        provider_id = f"sbx-{uuid.uuid4().hex}"
        thread = msg.provider_thread_id or f"sbx-thread-{uuid.uuid4().hex}"
        await conn.execute(
            "INSERT INTO sandbox_mail (user_id, provider_message_id, provider_thread_id, message_id, direction, raw)"
            " VALUES (%s, %s, %s, %s, 'out', %s)",
            (self._user_id, provider_id, thread, msg.message_id, raw),
        )
        return SentMessage(provider_message_id=provider_id, provider_thread_id=thread, message_id=msg.message_id)

    async def find_sent(self, message_id: str) -> SentMessage | None:
        """The sent message with this Message-ID, if it reached the mailbox."""
        async with self._pool.connection() as conn:
            return await self.find_sent_in(conn, message_id)

    async def find_sent_in(self, conn: AsyncConnection, message_id: str) -> SentMessage | None:
        """The sent message with this Message-ID, if it reached the mailbox (caller's connection)."""
        cur = await conn.execute(
            "SELECT provider_message_id, provider_thread_id FROM sandbox_mail"
            " WHERE user_id = %s AND message_id = %s AND direction = 'out'",
            (self._user_id, message_id),
        )
        row = await cur.fetchone()
        if row is None:
            return None
        return SentMessage(row["provider_message_id"], row["provider_thread_id"], message_id)

    async def fetch(self, provider_message_id: str) -> InboundMessage:
        """Parse a message of the sandbox mailbox, exactly as a real one would be."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT raw, provider_thread_id, at FROM sandbox_mail WHERE user_id = %s AND provider_message_id = %s",
                (self._user_id, provider_message_id),
            )
            row = await cur.fetchone()
        if row is None:
            raise TransportError(f"no sandbox message {provider_message_id}")
        return parse_message(
            bytes(row["raw"]), provider_message_id=provider_message_id,
            provider_thread_id=row["provider_thread_id"], received_at=row["at"],
        )

    async def deliver_reply(
        self, *, thread: ThreadRow, last_message: dict[str, Any] | None, our_address: str, text: str,
        subject: str | None = None, headers: dict[str, str] | None = None, domain: str = "sandbox.invalid",
    ) -> str:
        """Put a reply from the thread's recipient into the mailbox; returns its provider id."""
        async with self._pool.connection() as conn:
            received = await self.deliver_reply_in(conn, thread=thread, last_message=last_message,
                                                   our_address=our_address, text=text, subject=subject,
                                                   headers=headers, domain=domain)
        return received.provider_message_id

    async def deliver_reply_in(
        self, conn: AsyncConnection, *, thread: ThreadRow, last_message: dict[str, Any] | None, our_address: str,
        text: str, subject: str | None = None, headers: dict[str, str] | None = None, domain: str = "sandbox.invalid",
    ) -> InboundMessage:
        """Put a reply from the recipient into the mailbox in the caller's transaction; returns it as `fetch` would
        (parsed from the stored bytes), so the caller can store it in the same transaction."""
        references: tuple[str, ...] = ()
        in_reply_to = None
        if last_message is not None and last_message.get("message_id"):
            in_reply_to = last_message["message_id"]
            references = (*(last_message.get("references") or ()), in_reply_to)
        base_subject = thread.subject or ""
        msg = OutgoingMessage(
            from_addr=thread.recipient_email, from_name=thread.recipient_name or "",
            to_addr=our_address, to_name="", subject=subject or (f"Re: {base_subject}" if base_subject else "Re:"),
            text=text, message_id=new_message_id(domain), in_reply_to=in_reply_to, references=references,
            extra_headers=tuple((headers or {}).items()),
        )
        provider_id = f"sbx-{uuid.uuid4().hex}"
        provider_thread = thread.provider_thread_id or f"sbx-thread-{uuid.uuid4().hex}"
        raw, at = build_message(msg), datetime.now(UTC)
        await conn.execute(
            "INSERT INTO sandbox_mail (user_id, provider_message_id, provider_thread_id, message_id, direction, raw, at)"
            " VALUES (%s, %s, %s, %s, 'in', %s, %s)",
            (self._user_id, provider_id, provider_thread, msg.message_id, raw, at),
        )
        return parse_message(raw, provider_message_id=provider_id, provider_thread_id=provider_thread, received_at=at)
