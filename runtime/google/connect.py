"""Connecting and disconnecting a user's Gmail: the grant from sign-in, the watch, and parked threads."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from agent.errors import AppError
from agent.events import service as events
from agent.google import mailboxes, oauth
from agent.mail.transport import TransportError
from agent.threads.lifecycle import EventType
from agent.users import service as users
from runtime import defer
from runtime.google.tasks import defer_sync, start_watch, stop_watch

if TYPE_CHECKING:
    from runtime.services import Services

log = logging.getLogger(__name__)


class SignInFailed(AppError):
    """Google did not vouch for this sign-in."""

    status_code = 400


async def complete_sign_in(svc: Services, *, token: dict[str, Any]) -> UUID:
    """Create or refresh the user and their mailbox from a verified OpenID Connect token; returns the user id."""
    info = token.get("userinfo") or {}
    if not info.get("sub") or not info.get("email"):
        raise SignInFailed("Sign-in failed: Google returned no verified identity. Try again from /login.")
    if info.get("email_verified") is not True:
        raise SignInFailed("Sign-in failed: Google has not verified this account's email address.")
    missing = oauth.missing_gmail_scopes(token.get("scope"))
    refresh = token.get("refresh_token")
    now = datetime.now(UTC)
    async with svc.pool.connection() as conn:
        user = await users.upsert_google_user(conn, sub=info["sub"], email=info["email"], name=info.get("name", ""))
        existing = await mailboxes.for_user(conn, user_id=user["id"])
        kept = existing is not None and existing["status"] == "connected" and existing["grant_enc"]
        if missing and kept:
            log.info("user %s signed in without Gmail scopes; the stored grant is kept", user["id"])
            return user["id"]
        grant_enc, status, reason = None, "connected", None
        if missing:
            status, reason = "disconnected", mailboxes.disconnected_reason(
                "permission to send and read mail was not granted (tick both Gmail boxes on Google's consent screen)")
        elif refresh:
            scopes = tuple(str(token.get("scope", "")).split())
            grant_enc = mailboxes.encrypt_grant(svc.keyring, mailboxes.Grant(refresh, scopes, now.isoformat()))
        elif not (existing and existing["grant_enc"]):
            status, reason = "disconnected", mailboxes.disconnected_reason("Google granted no offline access")
        mailbox = await mailboxes.save_grant(
            conn, user_id=user["id"], email=info["email"], grant_enc=grant_enc,
            scopes=list(str(token.get("scope", "")).split()), granted_at=now, status=status, reason=reason)
    svc.google.forget(mailbox["id"])
    log.info("user %s signed in; Gmail %s", user["id"], status)
    if status == "connected":
        await _after_connect(svc, mailbox)
    return user["id"]


async def _after_connect(svc: Services, mailbox: dict[str, Any]) -> None:
    """Watch (or take a cursor), resume threads parked by a disconnect, and catch up on missed mail."""
    try:
        await start_watch(svc, mailbox=mailbox)
    except TransportError:
        log.exception("could not start Gmail notifications for mailbox %s; polling covers it", mailbox["id"])
    async with svc.pool.connection() as conn:
        parked = await mailboxes.parked_by_disconnect(conn, user_id=mailbox["user_id"])
        for thread_id in parked:
            await events.record(conn, user_id=mailbox["user_id"], thread_id=thread_id, kind="resumed", actor="system",
                                summary="Gmail reconnected; the thread continues.")
    for thread_id in parked:
        await defer.defer_resume(svc.jobs, thread_id=thread_id, event={"type": EventType.resume.value},
                                queueing_lock=f"reconnect:{thread_id}")
    await defer_sync(svc.jobs, mailbox_id=mailbox["id"])


async def disconnect_user(svc: Services, *, user_id: UUID) -> bool:
    """The user disconnects Gmail: stop the watch, revoke and forget the grant, park the threads."""
    async with svc.pool.connection() as conn:
        mailbox = await mailboxes.for_user(conn, user_id=user_id)
    if mailbox is None or mailbox["status"] != "connected":
        return False
    import httpx  # loaded with the first disconnect, not with the app

    try:
        await stop_watch(svc, mailbox=mailbox)
        await _revoke(svc, mailbox)
    except (TransportError, httpx.HTTPError):
        log.exception("could not stop or revoke Gmail access of mailbox %s; forgetting the grant anyway", mailbox["id"])
    svc.google.forget(mailbox["id"])
    async with svc.pool.connection() as conn:
        await mailboxes.disconnect(conn, mailbox_id=mailbox["id"], drop_grant=True,
                                   reason=mailboxes.disconnected_reason("you disconnected it"))
    return True


async def _revoke(svc: Services, mailbox: dict[str, Any]) -> None:
    """Tell Google to revoke the refresh token."""
    url = (await oauth.discovery(svc.settings)).get("revocation_endpoint")
    if not url or not mailbox["grant_enc"]:
        return
    grant = mailboxes.decrypt_grant(svc.keyring, mailbox["grant_enc"])
    import httpx

    async with httpx.AsyncClient(timeout=15) as client:
        resp = await client.post(url, data={"token": grant.refresh_token})
    if resp.status_code >= 400:
        log.warning("Google answered %s to the token revocation", resp.status_code)
