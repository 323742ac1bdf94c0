"""Everything the server and the worker share, opened once at startup and closed at shutdown."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any
from uuid import UUID

import procrastinate
from psycopg import AsyncConnection
from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool

from agent import unsubscribe
from agent.assistants import service as assistants
from agent.config import Settings
from agent.db import SessionLocks
from agent.errors import NotFound
from agent.google.access import GoogleAccess
from agent.keyring import KeyRing
from agent.llm import LanguageModel
from agent.mail.outbox import Sender
from agent.mail.sandbox import SandboxTransport
from agent.mail.transport import MailboxDisconnected, MailTransport
from agent.threads import lifecycle
from agent.threads.models import THREAD_COLUMNS, ThreadRow
from agent.users import service as users
from graphs.context import Context, RunRows, Scheduler, utc_now

log = logging.getLogger(__name__)


@dataclass
class Services:
    """Open resources: the pool, the job app, the checkpointed graph, the model."""

    settings: Settings
    pool: AsyncConnectionPool
    jobs: procrastinate.App
    graph: Any
    llm: LanguageModel
    local_user_id: UUID | None
    keyring: KeyRing
    google: GoogleAccess
    locks: SessionLocks
    """Per-thread advisory locks on one connection of their own."""
    clock: Callable[[], datetime] = utc_now
    """The time every scheduling decision uses; tests replace it to move through days."""
    rng: random.Random = field(default_factory=random.Random)
    """The randomness of send spacing; tests seed it."""

    async def transport_for(self, user_id: UUID) -> MailTransport:
        """The user's mail transport: Gmail once they connected it, else the sandbox."""
        if not self.settings.local_mode:
            gmail = await self.google.transport_for_user(user_id)
            if gmail is not None:
                return gmail
        return SandboxTransport(self.pool, user_id=user_id)

    async def thread_transport(self, thread: ThreadRow) -> MailTransport:
        """The transport a thread was started on; a Gmail thread never falls back to the sandbox."""
        if thread.transport == "gmail":
            gmail = await self.google.transport_for_user(thread.user_id)
            if gmail is None:
                raise MailboxDisconnected("Gmail disconnected: this thread uses Gmail. Reconnect at /login.")
            return gmail
        if self.settings.local_mode:
            return await self.transport_for(thread.user_id)
        return SandboxTransport(self.pool, user_id=thread.user_id)

    async def transport_name_for(self, user_id: UUID) -> str:
        """The transport a new thread uses, chosen once: Gmail in Google mode (a thread started while the grant is
        revoked parks until it is reconnected, it never falls back to the sandbox), the sandbox in local mode."""
        return "sandbox" if self.settings.local_mode else "gmail"

    async def sender_for(self, user_id: UUID, sender_name: str) -> Sender:
        """The fixed From of the user's mail."""
        async with self.pool.connection() as conn:
            user = await users.get(conn, user_id=user_id)
        return self._sender(user["email"], sender_name)

    def _sender(self, address: str, sender_name: str) -> Sender:
        return Sender(address=address, name=sender_name, domain=self.settings.sender_domain,
                      unsubscribe_url=partial(unsubscribe.url_for, self.settings.base_url, self.keyring))

    @staticmethod
    async def run_rows(conn: AsyncConnection, *, thread_id: UUID) -> RunRows | None:
        """Mark the thread running: the thread as it is now, its persona and the user's address, read once for the
        run (caller's connection); None when a pause or stop landed first."""
        thread = await lifecycle.start_running(conn, thread_id=thread_id, columns=THREAD_COLUMNS,
                                               row_factory=class_row(ThreadRow))
        if thread is None:
            return None
        try:
            persona = await assistants.get(conn, user_id=thread.user_id, assistant_id=thread.assistant_id)
            email = (await users.get(conn, user_id=thread.user_id))["email"]
        except NotFound:
            return RunRows(thread=thread)  # context_for raises: the run parks on it
        return RunRows(thread=thread, persona=persona, user_email=email)

    async def context_for(self, rows: RunRows, *, scheduler: Scheduler) -> Context:
        """The graph's run-time context for one run of a thread; its nodes share `rows`, `scheduler` wakes the send queue."""
        if rows.thread is None or rows.persona is None or rows.user_email is None:
            raise NotFound("The thread's persona or user is gone.")
        return Context(
            pool=self.pool, llm=self.llm, transport=await self.thread_transport(rows.thread),
            sender=self._sender(rows.user_email, rows.persona.sender_name),
            scheduler=scheduler,
            clock=self.clock, rows=rows,
        )
