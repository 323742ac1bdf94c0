"""Durable background work on procrastinate: run and resume threads, timers, the sweep."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import procrastinate
from procrastinate.exceptions import AlreadyEnqueued

if TYPE_CHECKING:
    from runtime.services import Services

log = logging.getLogger(__name__)
NAMESPACE = "ea"
RETRY = procrastinate.RetryStrategy(max_attempts=8, exponential_wait=2)


def make_app(conninfo: str) -> procrastinate.App:
    """A procrastinate app on our database with our tasks registered."""
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo, min_size=1, max_size=5))
    for func in (run_thread, resume_thread):
        app.task(name=f"{NAMESPACE}:{func.__name__}", pass_context=True, retry=RETRY)(func)
    app.periodic(cron="* * * * *", periodic_id="sweep")(
        app.task(name=f"{NAMESPACE}:sweep", pass_context=True, queueing_lock="sweep")(sweep)
    )
    from runtime.google import tasks as google_tasks

    google_tasks.register(app)
    from runtime import digest

    digest.register(app)
    from runtime import sending as sending_tasks

    sending_tasks.register(app)
    return app


def _services(context: procrastinate.JobContext) -> Services:
    return context.additional_context["services"]


async def run_thread(context: procrastinate.JobContext, *, thread_id: str) -> None:
    """Start (or continue) a thread's graph until its next interrupt."""
    from runtime import runner

    await runner.advance(_services(context), thread_id=UUID(thread_id), event=None)


async def resume_thread(context: procrastinate.JobContext, *, thread_id: str, event: dict[str, Any]) -> None:
    """Deliver one event (reply, timer, human action) to a thread."""
    from runtime import runner

    await runner.advance(_services(context), thread_id=UUID(thread_id), event=event)


async def sweep(context: procrastinate.JobContext, timestamp: int) -> None:
    """Safety net: threads waiting with unread replies get a resume (e.g. a crash between store and defer)."""
    svc = _services(context)
    async with svc.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT DISTINCT t.id FROM threads t JOIN messages m ON m.thread_id = t.id"
            " WHERE (t.status IN ('waiting', 'awaiting_approval') OR (t.status = 'active' AND t.wait_kind = 'send_slot'))"
            " AND m.direction = 'in' AND m.processed_at IS NULL"
            " AND m.at < now() - interval '30 seconds'"
        )
        stuck = [row["id"] for row in await cur.fetchall()]
    for thread_id in stuck:
        await defer_resume(svc.jobs, thread_id=thread_id, event={"type": "reply", "source": "sweep"},
                           queueing_lock=f"sweep:{thread_id}")


async def defer_run(app: procrastinate.App, *, thread_id: UUID) -> None:
    """Queue the first run of a thread."""
    await app.configure_task(f"{NAMESPACE}:run_thread").defer_async(thread_id=str(thread_id))


async def defer_resume(
    app: procrastinate.App, *, thread_id: UUID, event: dict[str, Any], at: datetime | None = None,
    queueing_lock: str | None = None, delay_seconds: int | None = None,
) -> bool:
    """Queue an event for a thread; False when an identical one is already queued.

    No procrastinate `lock`: a lock would queue every event behind a timer scheduled days ahead. The runner
    serializes work per thread with a Postgres advisory lock instead.
    """
    options: dict[str, Any] = {}
    if at is not None:
        options["schedule_at"] = at
    if delay_seconds is not None:
        options["schedule_in"] = {"seconds": delay_seconds}
    if queueing_lock:
        options["queueing_lock"] = queueing_lock
    try:
        await app.configure_task(f"{NAMESPACE}:resume_thread", **options).defer_async(
            thread_id=str(thread_id), event=event
        )
    except AlreadyEnqueued:
        return False
    return True


class JobScheduler:
    """The graph's timers and send-queue wake-ups, backed by procrastinate."""

    def __init__(self, app: procrastinate.App) -> None:
        self._app = app

    async def dispatch_soon(self, *, user_id: UUID) -> None:
        """Wake the send-queue dispatcher for this mailbox."""
        from runtime.sending import defer_dispatch

        await defer_dispatch(self._app, user_id=user_id)

    async def follow_up_at(self, *, thread_id: UUID, wait_id: str, when: datetime) -> None:
        """Resume the thread with followup_due for this wait at `when` (once per wait)."""
        await defer_resume(self._app, thread_id=thread_id, event={"type": "followup_due", "wait_id": wait_id},
                           at=when, queueing_lock=f"timer:{thread_id}:{wait_id}")
