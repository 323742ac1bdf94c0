"""Sending settings: the daily cap, spacing, per-thread limit, bounce-rate pause and digest."""

from __future__ import annotations

from fastapi import APIRouter

from agent.sending import settings as sending_settings
from agent.sending.settings import SendingSettings, SendingSettingsUpdate
from runtime.sending import defer_dispatch
from server.deps import ConnDep, ServicesDep, UserIdDep

router = APIRouter(prefix="/api/settings", tags=["settings"])


@router.get("/sending")
async def get_sending(conn: ConnDep, user_id: UserIdDep) -> SendingSettings:
    """Your mailbox's sending settings (created with conservative defaults)."""
    return sending_settings.to_model(await sending_settings.get_row(conn, user_id=user_id))


@router.patch("/sending")
async def update_sending(body: SendingSettingsUpdate, svc: ServicesDep, conn: ConnDep,
                         user_id: UserIdDep) -> SendingSettings:
    """Change some settings; `resume_outreach` lifts a bounce-rate pause."""
    result = await sending_settings.update(conn, user_id=user_id, changes=body, now=svc.clock())
    await conn.commit()
    await defer_dispatch(svc.jobs, user_id=user_id)  # new limits may release queued email now
    return result
