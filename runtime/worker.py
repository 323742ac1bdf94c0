"""Running the job worker: inside `serve` by default, or alone as `email-assistant worker`."""

from __future__ import annotations

import asyncio
import logging
import signal
import time

from runtime import recovery, runner
from runtime.services import Services

log = logging.getLogger(__name__)
RESTART_MAX_SECONDS = 30
"""Longest wait before the worker starts again after it stopped by itself (e.g. PostgreSQL restarted)."""


async def run(services: Services, *, name: str, install_signal_handlers: bool) -> None:
    """Give parked threads a retry, then run procrastinate's worker until cancelled (SIGTERM for a lone worker).

    procrastinate stops its worker when a side task fails, as its LISTEN connection does when PostgreSQL
    restarts; the worker is then started again with backoff instead of leaving jobs unrun while the process lives.
    Cancelling is procrastinate's graceful stop: running jobs get shutdown_graceful_timeout to finish.
    """
    stopping = False
    if install_signal_handlers:
        task, loop = asyncio.current_task(), asyncio.get_running_loop()

        def stop() -> None:
            nonlocal stopping
            stopping = True
            task.cancel()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
    delay = 1.0
    while True:
        started = time.monotonic()
        try:
            requeued = await runner.requeue_parked(services)
            if requeued:
                log.info("queued a retry for %d parked thread(s)", requeued)
            await services.jobs.run_worker_async(
                install_signal_handlers=False, concurrency=services.settings.worker_concurrency,
                additional_context={"services": services}, fetch_job_polling_interval=services.settings.job_poll_seconds,
                name=name, shutdown_graceful_timeout=10, update_heartbeat_interval=recovery.HEARTBEAT_SECONDS,
                stalled_worker_timeout=recovery.STALLED_AFTER_SECONDS,
            )
            log.warning("job worker %s stopped by itself; starting it again in %.0f s", name, delay)
        except asyncio.CancelledError:
            if stopping:
                log.info("job worker %s stopped", name)
                return
            raise
        except Exception:
            log.exception("job worker %s failed; starting it again in %.0f s", name, delay)
        if time.monotonic() - started > 60:
            delay = 1.0
        await asyncio.sleep(delay)
        delay = min(delay * 2, RESTART_MAX_SECONDS)
