"""Whole-campaign actions: pause, resume or stop every thread of a campaign through the per-thread actions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from uuid import UUID

from agent.campaigns import service as campaigns
from agent.campaigns.models import ActionReport, CampaignAction, Outcome
from agent.errors import Conflict, NotFound
from agent.threads import lifecycle
from agent.threads.lifecycle import Status
from runtime import actions
from runtime.services import Services

# action → (the per-thread action, the statuses it applies to, True when the change is made at once)
ACTIONS: dict[str, tuple[Callable[..., Awaitable[None]], frozenset[Status], bool]] = {
    "pause": (actions.pause, lifecycle.PAUSABLE, True),
    "resume": (actions.resume, frozenset({Status.paused}), False),
    "stop": (actions.stop, lifecycle.STOPPABLE, True),
}


async def act(svc: Services, *, user_id: UUID, campaign_id: UUID, action: CampaignAction) -> ActionReport:
    """Run the action on each thread it applies to; a thread that changed meanwhile is reported as skipped."""
    func, applies, immediate = ACTIONS[action]
    async with svc.pool.connection() as conn:
        await campaigns.get(conn, user_id=user_id, campaign_id=campaign_id)
        rows = await campaigns.threads_in(conn, user_id=user_id, campaign_id=campaign_id)
    outcomes: list[Outcome] = []
    for row in rows:
        if Status(row["status"]) not in applies:
            continue
        try:
            await func(svc, user_id=user_id, thread_id=row["id"])
        except (Conflict, NotFound) as exc:
            outcomes.append(Outcome(thread_id=row["id"], recipient_email=row["recipient_email"], outcome="skipped",
                                    reason=exc.message))
            continue
        outcomes.append(Outcome(thread_id=row["id"], recipient_email=row["recipient_email"],
                                outcome="done" if immediate else "queued"))
    count = {k: sum(1 for o in outcomes if o.outcome == k) for k in ("done", "queued", "skipped")}
    return ActionReport(campaign_id=campaign_id, action=action, untouched=len(rows) - len(outcomes), threads=outcomes,
                        **count)
