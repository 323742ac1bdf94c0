"""Request dependencies: settings, services, the signed-in user, a connection."""

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


def get_user_id(request: Request, services: Annotated[Services, Depends(get_services)]) -> UUID:
    """The signed-in user; in local mode the one local user."""
    if services.local_user_id is not None:
        return services.local_user_id
    user_id: Any = request.session.get("user_id") if "session" in request.scope else None
    if not user_id:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Sign in first: open /login.")
    return UUID(user_id)


ServicesDep = Annotated[Services, Depends(get_services)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ConnDep = Annotated[AsyncConnection, Depends(get_conn, scope="function")]  # commit before the response is sent
UserIdDep = Annotated[UUID, Depends(get_user_id)]
