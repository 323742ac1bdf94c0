"""Request dependencies: settings, services, the signed-in user (API: 401; pages: to sign-in), a connection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, HTTPException, Request, status
from psycopg import AsyncConnection

from agent.config import Settings
from runtime.services import Services


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


def _signed_in(request: Request, services: Services) -> UUID | None:
    """The user of this request's session (the local user in local mode), or None."""
    if services.local_user_id is not None:
        return services.local_user_id
    user_id: Any = request.session.get("user_id") if "session" in request.scope else None
    if not user_id:
        return None
    return UUID(str(user_id))


def get_user_id(request: Request, services: Annotated[Services, Depends(get_services)]) -> UUID:
    """The signed-in user; in local mode the one local user; 401 otherwise."""
    user_id = _signed_in(request, services)
    if user_id is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Sign in first: open /login.")
    return user_id


def get_page_user_id(request: Request, services: Annotated[Services, Depends(get_services)]) -> UUID:
    """The signed-in user of a dashboard page; SignInRequired (a redirect to /signin) otherwise."""
    user_id = _signed_in(request, services)
    if user_id is None:
        raise SignInRequired()
    request.state.user_id = user_id
    return user_id


def get_optional_user_id(request: Request, services: Annotated[Services, Depends(get_services)]) -> UUID | None:
    """The signed-in user, or None (for the sign-in page itself)."""
    return _signed_in(request, services)


ServicesDep = Annotated[Services, Depends(get_services)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ConnDep = Annotated[AsyncConnection, Depends(get_conn, scope="function")]  # commit before the response is sent
UserIdDep = Annotated[UUID, Depends(get_user_id)]
PageUserDep = Annotated[UUID, Depends(get_page_user_id)]
MaybeUserDep = Annotated[UUID | None, Depends(get_optional_user_id)]
