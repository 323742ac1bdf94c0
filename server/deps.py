"""Request dependencies: settings, services, the signed-in user (API: 401; pages: to sign-in), a connection."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, HTTPException, Request, status
from psycopg import AsyncConnection

from agent.config import Settings
from agent.users import sessions
from runtime.services import Services
from server import csrf, security


def get_services(request: Request) -> Services:
    """The services opened at startup."""
    return request.app.state.services


def get_settings(request: Request) -> Settings:
    """The settings built at startup."""
    return request.app.state.settings


async def get_conn(services: Annotated[Services, Depends(get_services)]) -> AsyncIterator[AsyncConnection]:
    """A pooled connection whose transaction commits when the request succeeds."""
    async with services.pool.connection() as conn:
        yield conn


class SignInRequired(Exception):
    """No signed-in user on a page: the dashboard answers with a redirect to the sign-in page."""


SESSION_KEY = "sid"


def session_lifetimes(settings: Settings) -> tuple[timedelta, timedelta]:
    """How long a session lives without a request, and at most."""
    return timedelta(minutes=settings.session_idle_minutes), timedelta(hours=settings.session_max_hours)


async def _signed_in(request: Request, services: Services) -> UUID | None:
    """The user of this request's live server-side session (the local user in local mode), or None."""
    if services.local_user_id is not None:
        request.state.user_id = services.local_user_id  # for the request's log lines (server/logging_context.py)
        return services.local_user_id
    session_id: Any = request.session.get(SESSION_KEY) if "session" in request.scope else None
    if not session_id or not isinstance(session_id, str):
        return None
    idle, max_age = session_lifetimes(services.settings)
    async with services.pool.connection() as conn:
        user_id = await sessions.resolve(conn, session_id=session_id, idle=idle, max_age=max_age)
    if user_id is None:  # logged out, disconnected or expired: the cookie is dropped too
        request.session.clear()
    else:
        request.state.user_id = user_id  # for the request's log lines (server/logging_context.py)
    return user_id


def _same_site_proof(request: Request, settings: Settings) -> bool:
    """Whether an unsafe request shows it came from our own pages: the session's CSRF token, or same-origin headers."""
    if request.headers.get("sec-fetch-site") == "same-origin":
        return True
    if request.headers.get("origin") in security.allowed_origins(settings):
        return True
    sent, expected = request.headers.get(csrf.HEADER), request.session.get(csrf.SESSION_KEY)
    return bool(sent and isinstance(expected, str) and hmac.compare_digest(sent, expected))


async def get_user_id(request: Request, services: Annotated[Services, Depends(get_services)]) -> UUID:
    """The signed-in user; in local mode the one local user; 401 otherwise.

    A session cookie alone does not authorise a change: the request must also carry the CSRF header or same-origin
    Origin / Sec-Fetch-Site headers, which a browser sends only for our own pages (403 otherwise).
    """
    user_id = await _signed_in(request, services)
    if user_id is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Sign in first: open /login.")
    if services.local_user_id is None and request.method not in security.SAFE_METHODS \
            and not _same_site_proof(request, services.settings):
        raise csrf.CsrfFailed("Cross-site request refused: a signed-in request that changes something must send the "
                              "X-CSRF-Token header (the dashboard's token) or come from this site's pages "
                              "(a same-origin Origin or Sec-Fetch-Site: same-origin header).")
    return user_id


async def get_page_user_id(request: Request, services: Annotated[Services, Depends(get_services)]) -> UUID:
    """The signed-in user of a dashboard page; SignInRequired (a redirect to /signin) otherwise."""
    user_id = await _signed_in(request, services)
    if user_id is None:
        raise SignInRequired()
    return user_id


async def get_optional_user_id(request: Request,
                               services: Annotated[Services, Depends(get_services)]) -> UUID | None:
    """The signed-in user, or None (for the sign-in page itself)."""
    return await _signed_in(request, services)


ServicesDep = Annotated[Services, Depends(get_services)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ConnDep = Annotated[AsyncConnection, Depends(get_conn, scope="function")]  # commit before the response is sent
UserIdDep = Annotated[UUID, Depends(get_user_id)]
PageUserDep = Annotated[UUID, Depends(get_page_user_id)]
MaybeUserDep = Annotated[UUID | None, Depends(get_optional_user_id)]
