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
            await _run_fetchers(services, name=name)
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


def shares(concurrency: int, fetchers: int) -> list[int]:
    """EA_WORKER_CONCURRENCY split over the fetch loops (never more loops than jobs at once): [64, 64, 64, 64]."""
    n = max(1, min(fetchers, concurrency))
    return [concurrency // n + (i < concurrency % n) for i in range(n)]


async def _run_fetchers(services: Services, *, name: str) -> None:
    """Run EA_WORKER_FETCHERS procrastinate workers on this loop, sharing the concurrency; when one stops by itself,
    the others are stopped too (cancelling is their graceful stop) and its failure, if any, is raised.

    procrastinate's worker fetches one job per trip through the event loop. With 100 jobs of its own running, a
    trip takes 10-20 ms, so one loop started a burst of 200 replies over 3.6 s (the replies were stored within
    1.4 s); four loops start them as fast as they arrive. Each loop also LISTENs on a connection of its own.
    """
    settings = services.settings
    tasks = [asyncio.create_task(services.jobs.run_worker_async(
        install_signal_handlers=False, concurrency=share, additional_context={"services": services},
        fetch_job_polling_interval=settings.job_poll_seconds, name=name if i == 0 else f"{name}.{i}",
        shutdown_graceful_timeout=10, update_heartbeat_interval=recovery.HEARTBEAT_SECONDS,
        stalled_worker_timeout=recovery.STALLED_AFTER_SECONDS,
    )) for i, share in enumerate(shares(settings.worker_concurrency, settings.worker_fetchers))]
    try:
        done, _pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()
