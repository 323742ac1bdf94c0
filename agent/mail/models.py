"""Plain data that crosses the mail transport boundary."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One email we send; every address and header is set by code, never by the model."""

    from_addr: str
    from_name: str
    to_addr: str
    to_name: str
    subject: str
    text: str
    message_id: str
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    provider_thread_id: str | None = None
    extra_headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class SentMessage:
    """What the provider answered for a sent message."""

    provider_message_id: str
    provider_thread_id: str
    message_id: str


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A received email after parsing: headers we trust to be parsed, text we never trust."""

    provider_message_id: str
    provider_thread_id: str | None
    message_id: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    from_addr: str
    from_name: str
    to_addrs: tuple[str, ...]
    subject: str
    text: str
    """The new text only: quoted history and signature removed."""
    full_text: str
    """The whole readable body, for the record."""
    received_at: datetime
    headers: dict[str, str] = field(default_factory=dict)
    """Selected headers kept for the audit trail and the automated-mail checks."""
    auto_reply: str | None = None
    """Why this looks like an automated reply (header, subject), or None."""
    bounce: str | None = None
    """Why this looks like a bounce (mailer-daemon, DSN), or None."""
