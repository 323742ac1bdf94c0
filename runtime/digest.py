"""The escalation digest: a short email to the user, from and to their own mailbox, listing what needs them."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

import procrastinate
from psycopg import AsyncConnection

from agent.events import service as events
from agent.mail.mime import new_message_id
from agent.mail.models import OutgoingMessage
from agent.mail.transport import TransportError
from agent.sending import settings as sending_settings
from agent.threads.lifecycle import Status

if TYPE_CHECKING:
    from runtime.services import Services

log = logging.getLogger(__name__)
LISTED = 50
SECTIONS = ((Status.awaiting_approval, "Drafts waiting for your approval"),
            (Status.needs_human, "Conversations handed to you"))


@dataclass(frozen=True, slots=True)
class Digest:
    """One digest that went out."""

    user_id: UUID
    to: str
    message_id: str
    thread_ids: list[UUID]


def register(app: procrastinate.App) -> None:
    """The periodic digest task, every 5 minutes, one at a time."""
    app.periodic(cron="*/5 * * * *", periodic_id="digest")(
        app.task(name="ea:digest", pass_context=True, queueing_lock="digest")(digest_task)
    )


async def digest_task(context: procrastinate.JobContext, timestamp: int) -> None:
    """Send the digests that are due at this tick."""
    await send_digests(context.additional_context["services"], now=datetime.fromtimestamp(timestamp, UTC))


async def send_digests(svc: Services, *, now: datetime) -> list[Digest]:
    """Send every digest that is due at `now`; a user whose mailbox fails is retried at the next tick."""
    async with svc.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT user_id FROM sending_settings WHERE digest_enabled AND (last_digest_at IS NULL"
            " OR last_digest_at <= %s - make_interval(hours => digest_interval_hours)) ORDER BY user_id",
            (now,),
        )
        due = [row["user_id"] for row in await cur.fetchall()]
    sent: list[Digest] = []
    for user_id in due:
        try:
            digest = await send_digest(svc, user_id=user_id, now=now)
        except TransportError as exc:
            log.warning("digest for user %s not sent, retried at the next tick: %s", user_id, exc)
            continue
        if digest is not None:
            sent.append(digest)
    return sent


async def send_digest(svc: Services, *, user_id: UUID, now: datetime) -> Digest | None:
    """The user's digest when it is due and something needs them; at most one per interval, even with many workers."""
    transport = await svc.transport_for(user_id)
    if transport.name == "sandbox" and not svc.settings.local_mode:
        return None  # no Gmail connected: a digest in the sandbox would reach nobody
    async with svc.pool.connection() as conn:
        await sending_settings.get_row(conn, user_id=user_id)  # created with the defaults when missing
        cur = await conn.execute("SELECT * FROM sending_settings WHERE user_id = %s FOR UPDATE", (user_id,))
        row = await cur.fetchone()
        previous = row["last_digest_at"]
        if not row["digest_enabled"] or (
                previous is not None and previous > now - timedelta(hours=row["digest_interval_hours"])):
            return None
        cur = await conn.execute("SELECT email, name FROM users WHERE id = %s", (user_id,))
        user = await cur.fetchone()
        waiting = await _needs_you(conn, user_id=user_id)
        if not waiting:
            return None
        await conn.execute("UPDATE sending_settings SET last_digest_at = %s, updated_at = now() WHERE user_id = %s",
                           (now, user_id))
    msg = OutgoingMessage(
        from_addr=user["email"], from_name="Email assistant", to_addr=user["email"], to_name=user["name"] or "",
        subject=_subject(len(waiting)), text=_body(waiting, svc.settings.base_url, row["digest_interval_hours"]),
        message_id=new_message_id(svc.settings.sender_domain),
        extra_headers=(("Auto-Submitted", "auto-generated"), ("X-Auto-Response-Suppress", "All")),
    )
    try:
        await transport.send(msg)
    except Exception:
        async with svc.pool.connection() as conn:  # not sent: the claim is given back, the next tick tries again
            await conn.execute(
                "UPDATE sending_settings SET last_digest_at = %s WHERE user_id = %s AND last_digest_at = %s",
                (previous, user_id, now),
            )
        raise
    ids = [t["id"] for t in waiting]
    async with svc.pool.connection() as conn:
        await events.record(conn, user_id=user_id, thread_id=None, kind="digest_sent", actor="system",
                            summary=f"Digest sent to {user['email']}: {len(ids)} thread(s) need you.",
                            detail={"to": user["email"], "message_id": msg.message_id, "at": now.isoformat(),
                                    "thread_ids": [str(i) for i in ids]})
    return Digest(user_id=user_id, to=user["email"], message_id=msg.message_id, thread_ids=ids)


async def last_sent(conn: AsyncConnection, *, user_id: UUID) -> dict[str, Any] | None:
    """The user's latest digest event (when it went, to whom, which threads), for the dashboard."""
    cur = await conn.execute(
        "SELECT summary, detail, at FROM events WHERE user_id = %s AND thread_id IS NULL AND kind = 'digest_sent'"
        " ORDER BY id DESC LIMIT 1",
        (user_id,),
    )
    return await cur.fetchone()


async def _needs_you(conn: AsyncConnection, *, user_id: UUID) -> list[dict[str, Any]]:
    cur = await conn.execute(
        "SELECT t.id, t.status, t.recipient_email, t.recipient_name, t.subject, t.updated_at,"
        " (SELECT e.summary FROM events e WHERE e.thread_id = t.id AND e.kind = 'escalated'"
        "  ORDER BY e.id DESC LIMIT 1) AS why"
        " FROM threads t WHERE t.user_id = %s AND t.status = ANY(%s)"
        " ORDER BY t.updated_at, t.id",
        (user_id, [status.value for status, _title in SECTIONS]),
    )
    return await cur.fetchall()


def _subject(count: int) -> str:
    return f"Email assistant: {count} conversation{'s' if count != 1 else ''} need{'s' if count == 1 else ''} you"


def _body(threads: list[dict[str, Any]], base_url: str, interval_hours: int) -> str:
    base = base_url.rstrip("/")
    lines = ["Hello,", "", "Your email assistant is waiting for you:"]
    for status, title in SECTIONS:
        group = [t for t in threads if t["status"] == status]
        if not group:
            continue
        lines += ["", f"{title} ({len(group)}):"]
        for t in group[:LISTED]:
            who = f"{t['recipient_name']} <{t['recipient_email']}>" if t["recipient_name"] else t["recipient_email"]
            about = f" - {t['why']}" if status is Status.needs_human and t["why"] else ""
            lines.append(f"- {who}{about}\n  {base}/threads/{t['id']}")
        if len(group) > LISTED:
            lines.append(f"- and {len(group) - LISTED} more: {base}/threads?status={status}")
    lines += ["", f"Open the dashboard: {base}/", "",
              f"This digest comes at most once every {interval_hours} hour(s) while something needs you; "
              f"change or turn it off in the settings: {base}/settings"]
    return "\n".join(lines)
