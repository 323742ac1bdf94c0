"""The mailbox the assistant writes from: its state, and disconnecting it."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel

from agent.google import mailboxes
from agent.users import sessions
from runtime.google import connect
from server.deps import ConnDep, ServicesDep, UserIdDep

router = APIRouter(prefix="/api/mailbox", tags=["mailbox"])


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


@router.get("")
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


@router.post("/disconnect")
async def mailbox_disconnect(request: Request, svc: ServicesDep, user_id: UserIdDep) -> MailboxStatus:
    """Stop reading and sending from Gmail: the watch stops, the grant is revoked and forgotten, threads park.

    Every sign-in session of the user ends too (in Google mode): signing in again connects Gmail again.
    """
    await connect.disconnect_user(svc, user_id=user_id)
    async with svc.pool.connection() as conn:
        if svc.local_user_id is None:
            await sessions.end_all(conn, user_id=user_id)
            request.session.clear()
        return await mailbox_status(conn, user_id, svc)
