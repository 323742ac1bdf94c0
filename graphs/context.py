"""What nodes get at run time (never from state): storage, model, transport, scheduler."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol
from uuid import UUID

from psycopg_pool import AsyncConnectionPool

from agent.assistants.models import Assistant
from agent.llm import LanguageModel
from agent.mail.outbox import Sender
from agent.mail.transport import MailTransport
from agent.threads.models import ThreadRow


class Scheduler(Protocol):
    """Wakes the send queue (follow-up timers are the wait's stored due time, not a scheduled job)."""

    async def dispatch_soon(self, *, user_id: UUID) -> None:
        """Wake the send-queue dispatcher of this mailbox."""
        ...


class ThreadHeld(RuntimeError):
    """The user paused the thread while it was working; sending waits for resume."""


def utc_now() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


@dataclass
class RunRows:
    """The thread row and its persona, read once when a run starts and shared by the run's nodes."""

    # A run ends at its first new wait, so what nodes read here (identity, recipient, subject, the wait id the run
    # started from) holds for the whole run; the send node reads the status afresh before it sends.

    thread: ThreadRow | None = None
    persona: Assistant | None = None
    user_email: str | None = None


@dataclass(frozen=True)
class Context:
    """Run-time dependencies of the thread graph."""

    pool: AsyncConnectionPool
    llm: LanguageModel
    transport: MailTransport
    sender: Sender
    scheduler: Scheduler
    clock: Callable[[], datetime] = utc_now
    rows: RunRows = field(default_factory=RunRows)
