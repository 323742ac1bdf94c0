"""The job registry: every procrastinate task and periodic job, registered on one app."""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

import procrastinate

from runtime import digest, recovery, runner, sending
from runtime.defer import NAMESPACE, RESUME_THREAD, RUN_THREAD
from runtime.google import tasks as google_tasks
from runtime.services import Services

log = logging.getLogger(__name__)
RETRY = procrastinate.RetryStrategy(max_attempts=8, exponential_wait=2)


def make_app(conninfo: str) -> procrastinate.App:
    """A procrastinate app on our database with our tasks registered."""
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo, min_size=1, max_size=5))
    app.task(name=RUN_THREAD, pass_context=True, retry=RETRY)(run_thread)
    app.task(name=RESUME_THREAD, pass_context=True, retry=RETRY)(resume_thread)
    app.periodic(cron="* * * * *", periodic_id="sweep")(
        app.task(name=f"{NAMESPACE}:sweep", pass_context=True, queueing_lock="sweep")(sweep)
    )
    google_tasks.register(app)
    digest.register(app)
    sending.register(app)
    return app


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
