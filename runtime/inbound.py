"""The inbound path every transport shares: fetch, store once, match, resume the thread."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from uuid import UUID

import procrastinate
from psycopg import AsyncConnection

from agent import failpoints, metrics
from agent.events import service as events
from agent.mail.models import InboundMessage
from agent.mail.transport import MailTransport
from agent.threads import matching, messages
from agent.threads.lifecycle import EventType
from runtime import defer
from runtime.services import Services

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Received:
    """What became of one inbound message."""

    message_id: UUID | None
    thread_id: UUID | None
    new: bool


async def receive(svc: Services, *, user_id: UUID, transport: MailTransport, provider_message_id: str) -> Received:
    """Store a message once and, when it belongs to a thread, queue the thread's resume."""
    msg = await transport.fetch(provider_message_id)
    async with svc.pool.connection() as conn:
        received = await store(conn, jobs=svc.jobs, user_id=user_id, transport=transport.name, msg=msg)
    return stored(received)


async def store(conn: AsyncConnection, *, jobs: procrastinate.App, user_id: UUID, transport: str,
                msg: InboundMessage) -> Received:
    """Match a parsed message to its thread, store it once with its `received` event and queue the thread's resume,
    all in the caller's transaction: a stored reply always has its resume job."""
    thread_id = await matching.match_thread(
        conn, user_id=user_id, provider_thread_id=msg.provider_thread_id, in_reply_to=msg.in_reply_to,
        references=msg.references,
    )
    if thread_id is None:
        log.info("inbound message matches no thread; ignored")
        return Received(None, None, False)
    message_id = await messages.insert_inbound(conn, user_id=user_id, thread_id=thread_id, transport=transport,
                                               msg=msg)
    if message_id is not None:
        label = "an automated reply" if msg.auto_reply else "a bounce" if msg.bounce else "a reply"
        await events.record(conn, user_id=user_id, thread_id=thread_id, kind="received", actor="recipient",
                            summary=f"Received {label} from {msg.from_addr}.",
                            detail={"message_id": str(message_id), "auto_reply": msg.auto_reply, "bounce": msg.bounce},
                            dedupe_key=f"in:{message_id}")
        await defer.defer_resume(jobs, thread_id=thread_id, connection=conn,
                                 event={"type": EventType.reply.value, "message_id": str(message_id)})
    return Received(message_id, thread_id, message_id is not None)


def stored(received: Received) -> Received:
    """After the message's transaction committed: the crash point and the metric."""
    if received.thread_id is not None:
        failpoints.reached("after_inbound_store")
    if received.new:
        metrics.reply_received()
    return received
