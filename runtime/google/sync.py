"""Inbound Gmail sync: history since the cursor, each new reply stored once and matched to its thread."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

import psycopg
from procrastinate.exceptions import ConnectorException

from agent import failpoints
from agent.events import service as events
from agent.google import mailboxes
from agent.google.gmail import GmailNotFound, GmailTransport, GmailUnavailable
from agent.mail import pending
from agent.mail.transport import MailboxDisconnected
from agent.threads import matching
from runtime import inbound

if TYPE_CHECKING:
    from runtime.services import Services

log = logging.getLogger(__name__)

SKIP_LABELS = {"DRAFT", "SENT", "SPAM", "TRASH"}
RESYNC_DAYS = 7
RESYNC_MAX_MESSAGES = 500
_MSGID = re.compile(r"<[^<>\s]+>")
# Gmail or the database is out, not the message: the whole sync fails and is retried from the same cursor.
OUTAGES = (GmailUnavailable, MailboxDisconnected, psycopg.OperationalError, psycopg.InterfaceError,
           ConnectorException)


@dataclass(frozen=True, slots=True)
class SyncResult:
    """What one sync run did."""

    outcome: str
    seen: int = 0
    received: int = 0
    skipped: int = 0


async def sync_mailbox(svc: Services, *, mailbox_id: UUID) -> SyncResult:
    """Read what is new in the mailbox; one run at a time per mailbox (the session locks: waiting holds no connection)."""
    async with svc.locks.hold(f"mailbox:{mailbox_id}"):
        return await _sync(svc, mailbox_id)


async def _sync(svc: Services, mailbox_id: UUID) -> SyncResult:
    async with svc.pool.connection() as conn:
        mailbox = await mailboxes.get(conn, mailbox_id=mailbox_id)
    if mailbox is None or mailbox["status"] != "connected" or not mailbox["grant_enc"]:
        return SyncResult("not_connected")
    transport = await svc.google.transport_for_mailbox(mailbox)
    try:
        if mailbox["history_id"] is None:
            profile = await transport.profile()
            async with svc.pool.connection() as conn:
                await mailboxes.advance_cursor(conn, mailbox_id=mailbox_id, history_id=int(profile["historyId"]))
            return SyncResult("cursor_started")
        try:
            found, cursor = await _history(transport, int(mailbox["history_id"]))
            outcome = "synced"
        except GmailNotFound:
            log.warning("mailbox %s: history cursor %s expired; bounded resync of the last %d days",
                        mailbox_id, mailbox["history_id"], RESYNC_DAYS)
            found, cursor = await _resync(transport, mailbox)
            outcome = "resynced"
        async with svc.pool.connection() as conn:  # kept from earlier syncs: tried again first, in order
            retry = await pending.due(conn, user_id=mailbox["user_id"], transport=transport.name)
        seen = {message_id for message_id, _hint, _labels in found}
        found = [(m, "", set()) for m in retry if m not in seen] + found
        received = skipped = 0
        for message_id, thread_hint, labels in found:
            if labels & SKIP_LABELS:
                continue
            got = await _receive_safely(svc, transport, mailbox, message_id, thread_hint)
            failpoints.reached("mid_history_sync")
            received += got is True
            skipped += got is None
    except MailboxDisconnected as exc:
        log.warning("mailbox %s cannot sync: %s", mailbox_id, exc)
        return SyncResult("disconnected")
    async with svc.pool.connection() as conn:
        await mailboxes.advance_cursor(conn, mailbox_id=mailbox_id, history_id=cursor)
    if found:
        log.info("mailbox %s %s: %d new message(s), %d stored, %d skipped", mailbox_id, outcome, len(found),
                 received, skipped)
    return SyncResult(outcome, len(found), received, skipped)


async def _history(transport: GmailTransport, start: int) -> tuple[list[tuple[str, str, set[str]]], int]:
    """Every message added to INBOX after `start`, following pages, and the mailbox's new historyId."""
    found: dict[str, tuple[str, str, set[str]]] = {}
    cursor, token = start, None
    while True:
        page = await transport.history_page(start, token)
        for record in page.get("history") or []:
            for added in record.get("messagesAdded") or []:
                msg = added.get("message") or {}
                if msg.get("id") and msg["id"] not in found:
                    found[msg["id"]] = (msg["id"], msg.get("threadId", ""), set(msg.get("labelIds") or []))
        cursor = max(cursor, int(page.get("historyId") or cursor))
        token = page.get("nextPageToken")
        if not token:
            return list(found.values()), cursor


async def _resync(transport: GmailTransport, mailbox: dict[str, Any]) -> tuple[list[tuple[str, str, set[str]]], int]:
    """After an expired cursor: INBOX mail of the last days (bounded), and a fresh cursor taken first."""
    cursor = int((await transport.profile())["historyId"])
    since = int(time.time()) - RESYNC_DAYS * 86400
    if mailbox["synced_at"] is not None:
        since = max(since, int(mailbox["synced_at"].timestamp()) - 86400)
    found: list[tuple[str, str, set[str]]] = []
    token = None
    while len(found) < RESYNC_MAX_MESSAGES:
        page = await transport.inbox_page(f"after:{since}", token)
        found += [(m["id"], m.get("threadId", ""), set()) for m in page.get("messages") or []]
        token = page.get("nextPageToken")
        if not token:
            break
    if token:
        log.warning("mailbox %s: resync stopped at %d messages", mailbox["id"], RESYNC_MAX_MESSAGES)
    return list(reversed(found[:RESYNC_MAX_MESSAGES])), cursor


async def _receive_safely(svc: Services, transport: GmailTransport, mailbox: dict[str, Any], message_id: str,
                          thread_hint: str) -> bool | None:
    """_receive_one for one message of a sync; a message that fails is kept and retried by later syncs (None)."""
    thread_id: UUID | None = None
    user_id = mailbox["user_id"]
    try:
        thread_id = await _thread_of(svc, transport, mailbox, message_id, thread_hint)
        got = thread_id is not None and await _receive_one(svc, transport, mailbox, message_id)
    except GmailNotFound:
        log.warning("mailbox %s: message %s is gone (deleted since it was listed); skipped", mailbox["id"], message_id)
        got = None
    except OUTAGES:
        raise
    except Unmatched as exc:
        await _keep(svc, mailbox, message_id, "unmatched", str(exc), None)
        return None
    except Exception as exc:  # one bad message must not hold back the cursor: it is kept and tried again
        log.exception("mailbox %s: message %s could not be read; kept for the next sync", mailbox["id"], message_id)
        await _keep(svc, mailbox, message_id, "unreadable", _describe(exc), thread_id)
        return None
    async with svc.pool.connection() as conn:
        await pending.resolved(conn, user_id=user_id, transport=transport.name, provider_message_id=message_id)
    return got


class Unmatched(LookupError):
    """A message answers one of our Message-IDs but no thread matches it (yet)."""


async def _keep(svc: Services, mailbox: dict[str, Any], message_id: str, reason: str, error: str,
                thread_id: UUID | None) -> None:
    """Keep a failed message for the next syncs; after a few tries, say so on its thread or to the user."""
    async with svc.pool.connection() as conn:
        attempts = await pending.keep(conn, user_id=mailbox["user_id"], transport="gmail",
                                      provider_message_id=message_id, reason=reason, error=error, thread_id=thread_id)
        if attempts == pending.REPORT_AFTER:
            summary = ("A message in this conversation could not be read; it is retried, and you can open it in Gmail."
                       if reason == "unreadable" else
                       "A reply to one of the assistant's emails matched no conversation; it is retried.")
            await events.record(conn, user_id=mailbox["user_id"], thread_id=thread_id, kind="receive_failed",
                                actor="system", summary=summary,
                                detail={"provider_message_id": message_id, "reason": reason, "error": error},
                                dedupe_key=f"receive_failed:{message_id}")


def _describe(exc: BaseException) -> str:
    """A short description of a per-message failure for the event trail."""
    return f"{type(exc).__name__}: {str(exc)[:200]}"


async def _thread_of(svc: Services, transport: GmailTransport, mailbox: dict[str, Any], message_id: str,
                     thread_hint: str) -> UUID | None:
    """The thread a new message belongs to (None: stored already, or unrelated mail, whose body is never read)."""
    user_id = mailbox["user_id"]
    async with svc.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT 1 FROM messages WHERE user_id = %s AND transport = %s AND provider_message_id = %s",
            (user_id, transport.name, message_id))
        if await cur.fetchone():
            return None
        known = await matching.match_thread(conn, user_id=user_id, provider_thread_id=thread_hint, in_reply_to=None,
                                            references=()) if thread_hint else None
    if known is not None:
        return known
    headers = await transport.headers(message_id)
    if set(headers["labels"].split()) & SKIP_LABELS:
        return None
    refs = tuple(_MSGID.findall(headers.get("references", "")))
    in_reply_to = next(iter(_MSGID.findall(headers.get("in-reply-to", ""))), None)
    async with svc.pool.connection() as conn:
        matched = await matching.match_thread(conn, user_id=user_id, provider_thread_id=headers["threadid"],
                                              in_reply_to=in_reply_to, references=refs)
    if matched is None and any(ref.endswith(f"@{svc.settings.sender_domain}>") for ref in (in_reply_to or "", *refs)):
        raise Unmatched(f"it answers {in_reply_to or refs[-1]}, which no thread knows")
    if matched is None:
        log.debug("mailbox %s: message %s belongs to no thread; ignored", mailbox["id"], message_id)
    return matched


async def _receive_one(svc: Services, transport: GmailTransport, mailbox: dict[str, Any], message_id: str) -> bool:
    """Store one message of a known thread, unless it is our own."""
    msg = await transport.fetch(message_id)
    if msg.from_addr and msg.from_addr.lower() == mailbox["email"].lower():
        log.debug("mailbox %s: message %s is our own; ignored", mailbox["id"], message_id)
        return False
    return (await inbound.receive(svc, user_id=mailbox["user_id"], transport=transport,
                                  provider_message_id=message_id)).new
