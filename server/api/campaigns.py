"""Campaigns: list, read (funnel, queue, reply rate, counts), and pause, resume or stop a whole campaign."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel

from agent.campaigns import service
from agent.campaigns.models import ActionReport, Campaign, CampaignAction, CampaignDetail
from agent.errors import InvalidInput
from agent.stats import service as stats
from runtime import campaigns as campaign_actions
from server.deps import ConnDep, ServicesDep, UserIdDep

router = APIRouter(prefix="/api/campaigns", tags=["campaigns"])


class DailyPoint(BaseModel):
    """One day of the campaign's chart."""

    day: str
    sent: int
    replies: int
    contacted: int
    replied: int
    reply_rate: float | None


@router.get("")
async def list_campaigns(conn: ConnDep, user_id: UserIdDep, assistant_id: UUID | None = None) -> list[Campaign]:
    """Your campaigns (bulk starts), newest first, with thread, sent and reply counts."""
    return await service.list_for_user(conn, user_id=user_id, assistant_id=assistant_id)


@router.get("/{campaign_id}")
async def get_campaign(campaign_id: UUID, conn: ConnDep, user_id: UserIdDep) -> CampaignDetail:
    """One campaign: its funnel, what goes out when, its reply rate and its threads' counts by status."""
    return await service.detail(conn, user_id=user_id, campaign_id=campaign_id)


@router.get("/{campaign_id}/daily")
async def campaign_daily(campaign_id: UUID, conn: ConnDep, user_id: UserIdDep,
                         days: Annotated[int, Query(ge=7, le=90)] = 7) -> list[DailyPoint]:
    """Sends, replies and reply rate per day over the last 7, 30 or 90 days (the mailbox's calendar)."""
    if days not in stats.CHART_DAYS:
        raise InvalidInput("days must be 7, 30 or 90.")
    await service.get(conn, user_id=user_id, campaign_id=campaign_id)
    series = await stats.daily(conn, user_id=user_id, days=days, campaign_id=campaign_id)
    return [DailyPoint(day=p.day.isoformat(), sent=p.sent, replies=p.replies, contacted=p.contacted,
                       replied=p.replied, reply_rate=p.reply_rate) for p in series.points]


async def _act(svc: ServicesDep, user_id: UUID, campaign_id: UUID, action: CampaignAction) -> ActionReport:
    return await campaign_actions.act(svc, user_id=user_id, campaign_id=campaign_id, action=action)


@router.post("/{campaign_id}/pause")
async def pause_campaign(campaign_id: UUID, svc: ServicesDep, user_id: UserIdDep) -> ActionReport:
    """Pause every open thread of the campaign; the outcome is reported per thread."""
    return await _act(svc, user_id, campaign_id, "pause")


@router.post("/{campaign_id}/resume")
async def resume_campaign(campaign_id: UUID, svc: ServicesDep, user_id: UserIdDep) -> ActionReport:
    """Resume every paused thread of the campaign; the outcome is reported per thread."""
    return await _act(svc, user_id, campaign_id, "resume")


@router.post("/{campaign_id}/stop")
async def stop_campaign(campaign_id: UUID, svc: ServicesDep, user_id: UserIdDep) -> ActionReport:
    """Stop (close for good) every open thread of the campaign; the outcome is reported per thread."""
    return await _act(svc, user_id, campaign_id, "stop")
