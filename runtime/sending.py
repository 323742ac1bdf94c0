"""Jobs of the send queue: the dispatcher, one pass at a time per mailbox, and its safety-net sweep."""

from __future__ import annotations

from uuid import UUID

import procrastinate

from agent.sending import queue
from runtime.defer import DISPATCH, defer_dispatch, defer_resume
from runtime.services import Services

__all__ = ["defer_dispatch", "dispatch_sends", "dispatch_sweep", "register", "run_dispatch"]


def register(app: procrastinate.App) -> None:
    """Add the dispatcher and its sweep to a procrastinate app."""
    app.task(name=DISPATCH, pass_context=True, retry=procrastinate.RetryStrategy(max_attempts=5, exponential_wait=2))(
        dispatch_sends)
    app.periodic(cron="* * * * *", periodic_id="dispatch_sweep")(
        app.task(name="ea:dispatch_sweep", pass_context=True, queueing_lock="dispatch_sweep")(dispatch_sweep)
    )


async def run_dispatch(svc: Services, *, user_id: UUID, keep: UUID | None = None,
                       unless_ahead: int | None = None) -> queue.Dispatch | None:
    """One dispatcher pass under the mailbox's lock; releases a thread and schedules the next pass.

    A release of thread `keep` is not queued as a resume: the caller (the runner, holding that thread) delivers it.
    With `unless_ahead`, when that many queued emails go before keep's, no pass is made here: the dispatcher job is
    woken instead (its queued passes collapse) and None is returned.
    """
    async with svc.pool.connection() as conn:
        if keep is not None and unless_ahead is not None and \
                await queue.ahead_in_line(conn, thread_id=keep, up_to=unless_ahead) >= unless_ahead:
            await defer_dispatch(svc.jobs, user_id=user_id)
            return None
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"dispatch:{user_id}",))
        result = await queue.dispatch_once(conn, user_id=user_id, now=svc.clock(), rng=svc.rng, prefer=keep)
    if result.released is not None and result.released.thread_id != keep:
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
    svc: Services = context.additional_context["services"]
    async with svc.pool.connection() as conn:
        users = await queue.users_with_pending(conn)
        released = await queue.lost_releases(conn)
    for user_id in users:
        await defer_dispatch(svc.jobs, user_id=user_id)
    for row in released:
        await defer_resume(svc.jobs, thread_id=row["thread_id"],
                           event={"type": row["released_as"], "wait_id": row["wait_id"]},
                           queueing_lock=f"slot:{row['thread_id']}:{row['wait_id']}")
