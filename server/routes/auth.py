"""Sign in with Google (OpenID Connect + the Gmail grant), log out, and the mailbox connection."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import httpx
from authlib.integrations.starlette_client import OAuthError
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from joserfc.errors import JoseError
from pydantic import BaseModel

from agent.errors import NotFound
from agent.google import mailboxes, oauth
from runtime.google import connect
from server.deps import ConnDep, ServicesDep, SettingsDep, UserIdDep

log = logging.getLogger(__name__)
router = APIRouter(tags=["auth"])
CALLBACK_PATH = "/auth/callback"


class MailboxStatus(BaseModel):
    """The user's mail connection, as the dashboard shows it."""

    transport: str
    connected: bool
    email: str | None = None
    reason: str | None = None
    scopes: list[str] = []
    granted_at: datetime | None = None
    watch_expiration: datetime | None = None
    synced_at: datetime | None = None


def _google(request: Request) -> Any:
    settings = request.app.state.settings
    if settings.local_mode:
        raise NotFound("Google sign-in is not configured (local mode): set GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET.")
    if getattr(request.app.state, "oauth", None) is None:
        request.app.state.oauth = oauth.make_oauth(settings)
    return request.app.state.oauth.google


@router.get("/login", include_in_schema=False)
async def login(request: Request, settings: SettingsDep) -> RedirectResponse:
    """Start Google sign-in: identity plus permission to send and read Gmail, offline, always with consent."""
    if settings.local_mode:
        return RedirectResponse("/", status_code=303)
    return await _google(request).authorize_redirect(
        request, settings.base_url + CALLBACK_PATH, access_type="offline", prompt="consent",
        include_granted_scopes="true",
    )


@router.get(CALLBACK_PATH, include_in_schema=False)
async def callback(request: Request, svc: ServicesDep) -> RedirectResponse:
    """Google sends the user back here: check state and nonce, store the grant, start the session."""
    client = _google(request)
    try:
        token = await client.authorize_access_token(request)
    except (OAuthError, JoseError) as exc:
        log.warning("sign-in refused: %s", type(exc).__name__)
        detail = getattr(exc, "description", None) or getattr(exc, "error", None) or type(exc).__name__
        raise connect.SignInFailed(f"Sign-in failed ({detail}). Start again at /login.") from exc
    except httpx.HTTPError as exc:
        raise connect.SignInFailed("Sign-in failed: Google could not be reached. Try again at /login.") from exc
    user_id = await connect.complete_sign_in(svc, token=token)
    request.session.clear()  # nothing from before sign-in survives into the signed-in session
    request.session["user_id"] = str(user_id)
    return RedirectResponse("/", status_code=303)


@router.api_route("/logout", methods=["GET", "POST"], include_in_schema=False)
async def logout(request: Request) -> RedirectResponse:
    """End the session (Gmail stays connected for the assistant's work)."""
    request.session.clear()
    return RedirectResponse("/", status_code=303)


@router.get("/api/mailbox", tags=["mailbox"])
async def mailbox_status(conn: ConnDep, user_id: UserIdDep, svc: ServicesDep) -> MailboxStatus:
    """Which mailbox the assistant writes from, and whether it must be reconnected."""
    row = await mailboxes.for_user(conn, user_id=user_id)
    transport = await svc.transport_name_for(user_id)
    if row is None:
        reason = None if svc.settings.local_mode else "Gmail is not connected. Connect it at /login."
        return MailboxStatus(transport=transport, connected=False, reason=reason)
    return MailboxStatus(transport=transport, connected=row["status"] == "connected", email=row["email"],
                         reason=row["disconnect_reason"], scopes=row["scopes"], granted_at=row["granted_at"],
                         watch_expiration=row["watch_expiration"], synced_at=row["synced_at"])


@router.post("/api/mailbox/disconnect", tags=["mailbox"])
async def mailbox_disconnect(svc: ServicesDep, user_id: UserIdDep) -> MailboxStatus:
    """Stop reading and sending from Gmail: the watch stops, the grant is revoked and forgotten, threads park."""
    await connect.disconnect_user(svc, user_id=user_id)
    async with svc.pool.connection() as conn:
        return await mailbox_status(conn, user_id, svc)
