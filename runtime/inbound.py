"""The inbound path every transport shares: fetch, store once, match, resume the thread."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from uuid import UUID

from agent import failpoints, metrics
from agent.events import service as events
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
        thread_id = await matching.match_thread(
            conn, user_id=user_id, provider_thread_id=msg.provider_thread_id, in_reply_to=msg.in_reply_to,
            references=msg.references,
        )
        if thread_id is None:
            log.info("inbound message matches no thread; ignored")
            return Received(None, None, False)
        stored = await messages.insert_inbound(conn, user_id=user_id, thread_id=thread_id, transport=transport.name,
                                               msg=msg)
        if stored is not None:
            label = "an automated reply" if msg.auto_reply else "a bounce" if msg.bounce else "a reply"
            await events.record(conn, user_id=user_id, thread_id=thread_id, kind="received", actor="recipient",
                                summary=f"Received {label} from {msg.from_addr}.",
                                detail={"message_id": str(stored), "auto_reply": msg.auto_reply, "bounce": msg.bounce},
                                dedupe_key=f"in:{stored}")
    failpoints.reached("after_inbound_store")
    if stored is not None:
        metrics.reply_received()
        await defer.defer_resume(svc.jobs, thread_id=thread_id,
                                 event={"type": EventType.reply.value, "message_id": str(stored)})
    return Received(stored, thread_id, stored is not None)
