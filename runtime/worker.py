"""Running the job worker: inside `serve` by default, or alone as `email-assistant worker`."""

from __future__ import annotations

import logging

from runtime import runner
from runtime.services import Services

log = logging.getLogger(__name__)


async def run(services: Services, *, name: str, install_signal_handlers: bool) -> None:
    """Give parked threads a retry, then run procrastinate's worker until stopped."""
    requeued = await runner.requeue_parked(services)
    if requeued:
        log.info("queued a retry for %d parked thread(s)", requeued)
    await services.jobs.run_worker_async(
        install_signal_handlers=install_signal_handlers, concurrency=services.settings.worker_concurrency,
        additional_context={"services": services}, fetch_job_polling_interval=services.settings.job_poll_seconds,
        name=name, shutdown_graceful_timeout=10,
    )
