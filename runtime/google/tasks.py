"""Gmail background jobs: the per-mailbox sync every notification feeds, and the daily watch renewal."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import procrastinate

from agent.google import mailboxes
from agent.mail.transport import MailboxDisconnected, TransportError
from runtime.defer import SYNC_MAILBOX, defer_sync
from runtime.services import Services

log = logging.getLogger(__name__)
RENEW_TASK = "ea:renew_watches"
SYNC_RETRY = procrastinate.RetryStrategy(max_attempts=8, exponential_wait=2)


def register(app: procrastinate.App) -> None:
    """Add the Gmail tasks to the job app."""
    app.task(name=SYNC_MAILBOX, pass_context=True, retry=SYNC_RETRY)(sync_mailbox)
    app.periodic(cron="7 * * * *", periodic_id="renew_watches")(
        app.task(name=RENEW_TASK, pass_context=True, queueing_lock="renew_watches")(renew_watches)
    )


async def notify(svc: Services, *, email: str, history_id: int | None, source: str) -> str:
    """A notification (push, pull) says the mailbox changed: queue its sync unless nothing can be new."""
    async with svc.pool.connection() as conn:
        mailbox = await mailboxes.by_email(conn, email=email)
    if mailbox is None:
        log.info("%s notification for a mailbox we do not know; acknowledged", source)
        return "unknown_mailbox"
    if mailbox["status"] != "connected":
        return "disconnected"
    if history_id is not None and mailbox["history_id"] is not None and history_id <= mailbox["history_id"]:
        return "up_to_date"
    queued = await defer_sync(svc.jobs, mailbox_id=mailbox["id"], want=history_id)
    return "queued" if queued else "already_queued"


async def start_watch(svc: Services, *, mailbox: dict[str, Any]) -> None:
    """users.watch on EA_PUBSUB_TOPIC (or, without a topic, just a starting cursor); the cursor never moves back."""
    transport = await svc.google.transport_for_mailbox(mailbox)
    topic = svc.settings.pubsub_topic
    reply = await (transport.watch(topic) if topic else transport.profile())
    async with svc.pool.connection() as conn:
        if mailbox["history_id"] is None:
            await mailboxes.advance_cursor(conn, mailbox_id=mailbox["id"], history_id=int(reply["historyId"]))
        if topic:
            expiration = datetime.fromtimestamp(int(reply["expiration"]) / 1000, UTC)
            await mailboxes.set_watch(conn, mailbox_id=mailbox["id"], expiration=expiration)


async def stop_watch(svc: Services, *, mailbox: dict[str, Any]) -> None:
    """users.stop, so Gmail stops publishing for a mailbox we no longer read."""
    if svc.settings.pubsub_topic:
        transport = await svc.google.transport_for_mailbox(mailbox)
        await transport.stop()
    async with svc.pool.connection() as conn:
        await mailboxes.set_watch(conn, mailbox_id=mailbox["id"], expiration=None)


LAGGING_SYNC_TRIES = 6
"""Syncs after a notification whose history id is not visible yet (about a minute in all, then polling)."""


async def sync_mailbox(context: procrastinate.JobContext, *, mailbox_id: str, want: int | None = None,
                       attempt: int = 0) -> None:
    """Job: read the mailbox's new mail; again a little later while the notified history id is not visible."""
    from runtime.google import sync  # the Gmail client libraries load with the first sync, not at import

    svc: Services = context.additional_context["services"]
    result = await sync.sync_mailbox(svc, mailbox_id=UUID(mailbox_id))
    log.debug("sync of mailbox %s: %s", mailbox_id, result)
    if want is None or attempt + 1 >= LAGGING_SYNC_TRIES:
        return
    async with svc.pool.connection() as conn:
        mailbox = await mailboxes.get(conn, mailbox_id=UUID(mailbox_id))
    if mailbox is not None and mailbox["history_id"] is not None and mailbox["history_id"] < want:
        await defer_sync(svc.jobs, mailbox_id=UUID(mailbox_id), want=want, attempt=attempt + 1,
                         delay_seconds=min(2 ** attempt, 30))


async def renew_watches(context: procrastinate.JobContext, timestamp: int) -> None:
    """Periodic job: renew users.watch daily (Gmail drops a watch after 7 days) and resume missing cursors."""
    svc: Services = context.additional_context["services"]
    async with svc.pool.connection() as conn:
        due = await mailboxes.due_watch_renewals(conn) if svc.settings.pubsub_topic else []
    for mailbox_id in due:
        async with svc.pool.connection() as conn:
            mailbox = await mailboxes.get(conn, mailbox_id=mailbox_id)
        try:
            await start_watch(svc, mailbox=mailbox)
        except MailboxDisconnected as exc:
            log.warning("watch renewal for mailbox %s skipped: %s", mailbox_id, exc)
        except TransportError:
            log.exception("watch renewal for mailbox %s failed; retried within the hour", mailbox_id)
