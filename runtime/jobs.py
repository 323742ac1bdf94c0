"""The job registry: every procrastinate task and periodic job, registered on one app."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import procrastinate
from procrastinate import builtin_tasks

from agent import db, logs, metrics
from runtime import digest, recovery, runner, sending, timers
from runtime.defer import NAMESPACE, RESUME_THREAD, RUN_THREAD, JobManager
from runtime.google import tasks as google_tasks
from runtime.services import Services

log = logging.getLogger(__name__)
RETRY = procrastinate.RetryStrategy(max_attempts=8, exponential_wait=2)
JOB_RETENTION_HOURS = 24
"""Finished jobs are kept this long (for the logs and the doctor), then pruned; a closed thread's go at once."""
TIMERS_TASK, SWEEP_TASK = f"{NAMESPACE}:timers", f"{NAMESPACE}:sweep"
TICKS = [TIMERS_TASK, SWEEP_TASK]
"""Periodic ticks (17,280 a day for the timers alone): once succeeded they tell nothing, and go each hour."""


def make_app(conninfo: str) -> procrastinate.App:
    """A procrastinate app on our database with our tasks registered."""
    connector = procrastinate.PsycopgConnector(conninfo=conninfo, min_size=1, max_size=5, pool_factory=db.checked_pool)
    app = procrastinate.App(connector=connector,
                            worker_defaults={"worker_middleware": [observe_job]})
    app.job_manager = JobManager(connector=connector)  # retries give way to an identical queued job
    app.task(name=RUN_THREAD, pass_context=True, retry=RETRY)(run_thread)
    app.task(name=RESUME_THREAD, pass_context=True, retry=RETRY)(resume_thread)
    app.periodic(cron=recovery.SWEEP_CRON, periodic_id="sweep")(
        app.task(name=SWEEP_TASK, pass_context=True, queueing_lock="sweep")(sweep)
    )
    app.periodic(cron=timers.TICK_CRON, periodic_id="timers")(
        app.task(name=TIMERS_TASK, pass_context=True, queueing_lock="timers")(fire_timers)
    )
    app.periodic(cron="17 * * * *", periodic_id="prune_jobs")(
        app.task(name=f"{NAMESPACE}:prune_jobs", pass_context=True, queueing_lock="prune_jobs")(prune_jobs)
    )
    google_tasks.register(app)
    digest.register(app)
    sending.register(app)
    return app


async def observe_job(call_next: Callable[[], Awaitable[Any]], context: procrastinate.JobContext,
                      worker: Any) -> Any:
    """Around every job: log context (job, task, thread), the jobs metric, and one `job done` line with its timing."""
    job = context.job
    thread_id = job.task_kwargs.get("thread_id")
    started, wall = time.perf_counter(), datetime.now(UTC)
    outcome = "failed"
    with logs.bound(job=job.id, task=job.task_name, thread_id=thread_id, user_id=job.task_kwargs.get("user_id")), \
            metrics.job(job.task_name):
        try:
            result = await call_next()
            outcome = "succeeded"
            return result
        finally:
            # A periodic tick that succeeded (17,280 timer ticks a day) is DEBUG; every other job, and a failed tick, INFO.
            quiet = outcome == "succeeded" and "timestamp" in job.task_kwargs
            log.log(logging.DEBUG if quiet else logging.INFO, "job done: %s #%s %s", job.task_name, job.id, outcome, extra={
                "json_fields": ("pid", "started_at", "ended_at", "outcome", "seconds"), "pid": os.getpid(),
                "started_at": wall.isoformat(), "ended_at": datetime.now(UTC).isoformat(), "outcome": outcome,
                "seconds": round(time.perf_counter() - started, 4)})


def _services(context: procrastinate.JobContext) -> Services:
    return context.additional_context["services"]


async def run_thread(context: procrastinate.JobContext, *, thread_id: str) -> None:
    """Start (or continue) a thread's graph until its next interrupt."""
    await runner.advance(_services(context), thread_id=UUID(thread_id), event=None)


async def resume_thread(context: procrastinate.JobContext, *, thread_id: str, event: dict[str, Any]) -> None:
    """Deliver one event (reply, timer, human action) to a thread."""
    await runner.advance(_services(context), thread_id=UUID(thread_id), event=event)


async def sweep(context: procrastinate.JobContext, timestamp: int) -> None:
    """Safety net each minute: jobs of dead workers retried, and what threads are owed queued again."""
    await recovery.recover(_services(context))


async def fire_timers(context: procrastinate.JobContext, timestamp: int) -> None:
    """Every few seconds: queue the follow-ups that fell due."""
    await timers.fire_due(_services(context))


async def prune_jobs(context: procrastinate.JobContext, timestamp: int) -> None:
    """Each hour: jobs finished more than a day ago (procrastinate's builtin; failed ones are kept), and the ticks."""
    await builtin_tasks.remove_old_jobs(context, max_hours=JOB_RETENTION_HOURS, remove_cancelled=True,
                                        remove_aborted=True)
    async with _services(context).pool.connection() as conn:
        await conn.execute("DELETE FROM procrastinate_jobs WHERE task_name = ANY(%s) AND status = 'succeeded'", (TICKS,))
