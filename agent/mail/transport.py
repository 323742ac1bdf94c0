"""The mail transport interface: send in a conversation, find what was sent, read a message."""

from __future__ import annotations

from typing import Protocol

from agent.mail.models import InboundMessage, OutgoingMessage, SentMessage


class TransportError(RuntimeError):
    """The provider failed; the step can be retried."""


class MailboxDisconnected(TransportError):
    """The user's grant is gone; the user must reconnect."""


class MailTransport(Protocol):
    """What the graph and the inbound path need from a mail provider."""

    name: str

    async def send(self, msg: OutgoingMessage) -> SentMessage:
        """Send one message; the provider keeps it in msg.provider_thread_id when given."""
        ...

    async def find_sent(self, message_id: str) -> SentMessage | None:
        """A message we sent with this RFC Message-ID, if the provider has it (reconciliation)."""
        ...

    async def fetch(self, provider_message_id: str) -> InboundMessage:
        """Read and parse one received message."""
        ...
