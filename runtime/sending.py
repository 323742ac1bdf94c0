"""Jobs of the send queue: the dispatcher, one pass at a time per mailbox, and its safety-net sweep."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

import procrastinate
from procrastinate.exceptions import AlreadyEnqueued

from agent.sending import queue

if TYPE_CHECKING:
    from runtime.services import Services

DISPATCH = "ea:dispatch_sends"


def register(app: procrastinate.App) -> None:
    """Add the dispatcher and its sweep to a procrastinate app."""
    app.task(name=DISPATCH, pass_context=True, retry=procrastinate.RetryStrategy(max_attempts=5, exponential_wait=2))(
        dispatch_sends)
    app.periodic(cron="* * * * *", periodic_id="dispatch_sweep")(
        app.task(name="ea:dispatch_sweep", pass_context=True, queueing_lock="dispatch_sweep")(dispatch_sweep)
    )


async def defer_dispatch(app: procrastinate.App, *, user_id: UUID, at: datetime | None = None) -> None:
    """Queue a dispatcher pass now, or at `at`; identical queued passes collapse into one."""
    lock = f"dispatch:{user_id}:{at.isoformat() if at else 'now'}"
    options = {"queueing_lock": lock, **({"schedule_at": at} if at else {})}
    try:
        await app.configure_task(DISPATCH, **options).defer_async(user_id=str(user_id))
    except AlreadyEnqueued:
        return


async def run_dispatch(svc: Services, *, user_id: UUID) -> queue.Dispatch:
    """One dispatcher pass under the mailbox's lock; releases a thread and schedules the next pass."""
    async with svc.pool.connection() as conn:
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"dispatch:{user_id}",))
        result = await queue.dispatch_once(conn, user_id=user_id, now=svc.clock(), rng=svc.rng)
    if result.released is not None:
        from runtime.jobs import defer_resume

        await defer_resume(svc.jobs, thread_id=result.released.thread_id,
                           event={"type": result.released.event, "wait_id": result.released.wait_id})
    if result.wake_at is not None:
        await defer_dispatch(svc.jobs, user_id=user_id, at=result.wake_at)
    return result


async def dispatch_sends(context: procrastinate.JobContext, *, user_id: str) -> None:
    """A dispatcher pass for one mailbox."""
    await run_dispatch(context.additional_context["services"], user_id=UUID(user_id))


async def dispatch_sweep(context: procrastinate.JobContext, timestamp: int) -> None:
    """Safety net: mailboxes with queued email get a pass; a released email whose resume was lost is re-delivered."""
    from runtime.jobs import defer_resume

    svc: Services = context.additional_context["services"]
    async with svc.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT DISTINCT q.user_id FROM send_queue q JOIN threads t ON t.id = q.thread_id"
            " WHERE q.dispatched_at IS NULL AND t.status NOT IN ('closed', 'paused')")
        users = [row["user_id"] for row in await cur.fetchall()]
        cur = await conn.execute(
            "SELECT q.thread_id, q.wait_id FROM send_queue q JOIN threads t ON t.id = q.thread_id"
            " WHERE q.dispatched_at < now() - interval '2 minutes' AND t.wait_id = q.wait_id AND t.status = 'active'")
        released = await cur.fetchall()
    for user_id in users:
        await defer_dispatch(svc.jobs, user_id=user_id)
    for row in released:
        await defer_resume(svc.jobs, thread_id=row["thread_id"], event={"type": "send_slot", "wait_id": row["wait_id"]},
                           queueing_lock=f"slot:{row['thread_id']}:{row['wait_id']}")
