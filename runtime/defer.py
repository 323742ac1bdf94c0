"""Queueing jobs by task name: the one narrow interface the runtime and the graph use to defer work."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from uuid import UUID

import procrastinate
from procrastinate import manager
from procrastinate.exceptions import AlreadyEnqueued, UniqueViolation
from procrastinate.jobs import Job
from procrastinate.jobs import Status as JobStatus
from psycopg import AsyncConnection

log = logging.getLogger(__name__)

NAMESPACE = "ea"
RUN_THREAD = f"{NAMESPACE}:run_thread"
RESUME_THREAD = f"{NAMESPACE}:resume_thread"
SYNC_MAILBOX = f"{NAMESPACE}:sync_mailbox"
DISPATCH = f"{NAMESPACE}:dispatch_sends"


async def defer_run(app: procrastinate.App, *, thread_id: UUID) -> None:
    """Queue the first run of a thread."""
    await app.configure_task(RUN_THREAD).defer_async(thread_id=str(thread_id))


async def defer_resume(
    app: procrastinate.App, *, thread_id: UUID, event: dict[str, Any], at: datetime | None = None,
    queueing_lock: str | None = None, delay_seconds: int | None = None, priority: int | None = None,
    connection: AsyncConnection | None = None,
) -> bool:
    """Queue an event for a thread; False when an identical one is already queued.

    With `connection`, the job is written in that connection's transaction: it exists exactly when what the
    caller wrote with it (a stored reply) commits.

    No procrastinate `lock`: a lock would queue every event behind a job scheduled for later. The runner serializes
    work per thread with a Postgres advisory lock instead.
    """
    options: dict[str, Any] = {}
    if at is not None:
        options["schedule_at"] = at
    if delay_seconds is not None:
        options["schedule_in"] = {"seconds": delay_seconds}
    if queueing_lock:
        options["queueing_lock"] = queueing_lock
    if priority is not None:
        options["priority"] = priority
    if connection is not None:
        options["connection"] = connection
    try:
        await app.configure_task(RESUME_THREAD, **options).defer_async(thread_id=str(thread_id), event=event)
    except AlreadyEnqueued:
        return False
    return True


async def defer_sync(
    app: procrastinate.App, *, mailbox_id: UUID, want: int | None = None, attempt: int = 0,
    delay_seconds: int | None = None,
) -> bool:
    """Queue a sync of the mailbox; False when one is already queued (repeated notifications collapse).

    `want` is the history id a notification named: a sync that does not reach it yet (Gmail's history lags its
    notifications) is tried again a little later, `attempt` counting the tries.
    """
    lock = f"sync-later:{mailbox_id}" if delay_seconds else f"sync:{mailbox_id}"
    options: dict[str, Any] = {"queueing_lock": lock}
    if delay_seconds:
        options["schedule_in"] = {"seconds": delay_seconds}
    try:
        await app.configure_task(SYNC_MAILBOX, **options).defer_async(
            mailbox_id=str(mailbox_id), want=want, attempt=attempt)
    except AlreadyEnqueued:
        return False
    return True


async def defer_dispatch(app: procrastinate.App, *, user_id: UUID, at: datetime | None = None) -> None:
    """Queue a dispatcher pass now, or at `at`; identical queued passes collapse into one."""
    lock = f"dispatch:{user_id}:{at.isoformat() if at else 'now'}"
    options = {"queueing_lock": lock, **({"schedule_at": at} if at else {})}
    try:
        await app.configure_task(DISPATCH, **options).defer_async(user_id=str(user_id))
    except AlreadyEnqueued:
        return


class JobManager(manager.JobManager):
    """procrastinate's job manager, with retries that give way to an identical queued job.

    A failed job whose queueing lock is taken by a queued job (a failed sync while the next sync waits, a failed
    dispatcher pass while the next pass waits) cannot go back to `todo`: procrastinate's retry raises and leaves the
    job in `doing` until the stalled-job sweep. Here it is marked failed at once; the queued job does its work.
    """

    async def retry_job(self, job: Job, retry_at: datetime | None = None, priority: int | None = None,
                        queue: str | None = None, lock: str | None = None) -> None:
        """Retry the job later, or, when an identical job is queued, mark it failed and let that one run."""
        try:
            await super().retry_job(job, retry_at=retry_at, priority=priority, queue=queue, lock=lock)
        except UniqueViolation as exc:
            if exc.queueing_lock is None:
                raise
            log.warning("job %s (%s): an identical job is queued (queueing lock %s); that one runs, this one is"
                        " marked failed", job.id, job.task_name, job.queueing_lock)
            await self.finish_job(job, status=JobStatus.FAILED, delete_job=False)
