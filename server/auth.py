"""Sign in with Google (OpenID Connect + the Gmail grant) and log out; the mailbox API is in server/api/mailbox.py."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from agent.errors import NotFound
from agent.google import oauth
from agent.users import sessions
from runtime.google import connect
from server.deps import SESSION_KEY, ServicesDep, SettingsDep, session_lifetimes

log = logging.getLogger(__name__)
router = APIRouter(tags=["auth"])
CALLBACK_PATH = "/auth/callback"


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
    import httpx  # the OAuth client's libraries load on first sign-in, not at start-up
    from authlib.integrations.starlette_client import OAuthError
    from joserfc.errors import JoseError

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
    async with svc.pool.connection() as conn:
        session_id = await sessions.create(conn, user_id=user_id, max_age=session_lifetimes(svc.settings)[1])
    request.session.clear()  # nothing from before sign-in survives into the signed-in session
    request.session[SESSION_KEY] = session_id
    return RedirectResponse("/", status_code=303)


@router.api_route("/logout", methods=["GET", "POST"], include_in_schema=False)
async def logout(request: Request, svc: ServicesDep) -> RedirectResponse:
    """End the session on the server, so a copied cookie is worthless (Gmail stays connected for the assistant)."""
    session_id = request.session.get(SESSION_KEY)
    if isinstance(session_id, str):
        async with svc.pool.connection() as conn:
            await sessions.end(conn, session_id=session_id)
    request.session.clear()
    return RedirectResponse("/", status_code=303)
