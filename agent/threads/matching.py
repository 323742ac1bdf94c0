"""Which thread an inbound email belongs to."""

from __future__ import annotations

from uuid import UUID

from psycopg import AsyncConnection

from agent.mail import outbox
from agent.threads import messages
from agent.threads import service as threads


async def match_thread(
    conn: AsyncConnection, *, user_id: UUID, provider_thread_id: str | None, in_reply_to: str | None,
    references: tuple[str, ...],
) -> UUID | None:
    """The provider conversation first, then In-Reply-To/References against stored mail and the outbox.

    The outbox knows every Message-ID before its email goes out, so a reply to an email whose send was never
    recorded (a crash right after the provider accepted it) still finds its thread.
    """
    if provider_thread_id:
        found = await threads.by_provider_thread(conn, user_id=user_id, provider_thread_id=provider_thread_id)
        if found is not None:
            return found
    ids = [i for i in (in_reply_to, *reversed(references)) if i]
    if not ids:
        return None
    found = await messages.thread_by_message_ids(conn, user_id=user_id, message_ids=ids)
    if found is None:
        found = await outbox.thread_by_message_ids(conn, user_id=user_id, message_ids=ids)
    return found
