"""Campaigns: the list of bulk starts, and a campaign's page with its funnel, queue, chart, threads and actions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from fastapi import APIRouter, Request, Response

from agent.campaigns import service
from agent.campaigns.models import CampaignDetail, Queue
from agent.errors import NotFound
from agent.threads import service as threads
from agent.threads.models import Status
from runtime import campaigns as campaign_actions
from runtime.services import Services
from server import charts, csrf, i18n
from server.deps import PageUserDep, ServicesDep
from server.i18n import gettext as _
from server.i18n import ngettext
from server.pages.common import PageRoute, render

router = APIRouter(prefix="/campaigns", route_class=PageRoute, include_in_schema=False)
THREADS_SHOWN = 50


def _moment(at: datetime, tz: str, now: datetime) -> str:
    """'today at 14:05', 'tomorrow at 09:00' or 'on 5 Dec at 09:00', in the mailbox's zone."""
    zone = ZoneInfo(tz)
    local, today = at.astimezone(zone), now.astimezone(zone).date()
    clock = format_time(local, "HH:mm", locale=i18n.current())
    if local.date() <= today:
        return _("today at %(time)s", time=clock)
    if local.date() == today + timedelta(days=1):
        return _("tomorrow at %(time)s", time=clock)
    return _("on %(day)s at %(time)s", day=format_date(local.date(), "d MMM", locale=i18n.current()), time=clock)


def queue_lines(queue: Queue, now: datetime) -> list[str]:
    """What goes out when, in plain words: '13 emails queued; the first goes tomorrow at 09:00', then per day."""
    lines: list[str] = []
    if queue.queued and queue.next_at is not None:
        lines.append(ngettext("%(num)d email queued; it goes %(when)s.", "%(num)d emails queued; the first goes "
                              "%(when)s.", queue.queued, when=_moment(queue.next_at, queue.timezone, now)))
    elif queue.queued:
        lines.append(ngettext("%(num)d email queued; its time is being planned.",
                              "%(num)d emails queued; their times are being planned.", queue.queued))
    for day in queue.days:
        lines.append(ngettext("%(num)d email %(when)s", "%(num)d emails from %(when)s", day.count,
                              when=_moment(day.first_at, queue.timezone, now)))
    if queue.unplanned and queue.next_at is not None:
        lines.append(ngettext("%(num)d more waits its turn.", "%(num)d more wait their turn.", queue.unplanned))
    if queue.held:
        lines.append(ngettext("%(num)d email is held while its thread is paused.",
                              "%(num)d emails are held while their threads are paused.", queue.held))
    return lines


@router.get("")
async def index(request: Request, svc: ServicesDep, uid: PageUserDep) -> Response:
    """The user's campaigns, newest first."""
    async with svc.pool.connection() as conn:
        items = await service.list_for_user(conn, user_id=uid)
    return await render(request, "campaigns.html", campaigns=items)


async def _page(request: Request, svc: Services, uid: UUID, campaign_id: UUID, *, days: int, status: str,
                report: Any = None) -> Response:
    chosen = Status(status) if status in Status.__members__ else None
    async with svc.pool.connection() as conn:
        found: CampaignDetail = await service.detail(conn, user_id=uid, campaign_id=campaign_id)
        rows, more = await threads.list_page(conn, user_id=uid, campaign_id=campaign_id, status=chosen,
                                             limit=THREADS_SHOWN)
        activity = await charts.activity(conn, user_id=uid, days=days, path=f"/campaigns/{campaign_id}",
                                         campaign_id=campaign_id)
    return await render(request, "campaign.html", detail=found, c=found.campaign, funnel=found.funnel,
                        queue=queue_lines(found.queue, datetime.now(UTC)), rows=rows, more=more is not None,
                        status=chosen.value if chosen else "", activity=activity, report=report)


@router.get("/{campaign_id}")
async def detail(request: Request, campaign_id: UUID, svc: ServicesDep, uid: PageUserDep, days: int = 7,
                 status: str = "") -> Response:
    """A campaign: funnel, what goes out when, reply rate, the chart, its threads and the whole-campaign actions."""
    return await _page(request, svc, uid, campaign_id, days=days, status=status)


@router.post("/{campaign_id}/{action}")
async def act(request: Request, campaign_id: UUID, action: str, svc: ServicesDep, uid: PageUserDep) -> Response:
    """Pause, resume or stop the whole campaign; the page shows what happened to each thread."""
    await csrf.checked_form(request)
    if action not in campaign_actions.ACTIONS:
        raise NotFound(_("This page does not exist."))
    report = await campaign_actions.act(svc, user_id=uid, campaign_id=campaign_id, action=action)  # type: ignore[arg-type]
    return await _page(request, svc, uid, campaign_id, days=7, status="", report=report)
