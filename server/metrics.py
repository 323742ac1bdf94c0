"""GET /metrics in the Prometheus text format: this process's counters, and database figures computed at scrape.

Per-process endpoints (no multiprocess mode): the server exposes /metrics, every `email-assistant worker
--metrics-port P` exposes the same route on its own port. Prometheus scrapes each process and sums the counters;
the database figures (threads by status, send queue depth) are only on the server's endpoint.
"""

from __future__ import annotations

import contextlib
import hmac
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from agent.config import Settings
from agent.metrics import PREFIX
from agent.threads.lifecycle import Status
from server import clients

router = APIRouter(tags=["health"])


class DatabaseCollector(Collector):
    """Threads by status and the send queue's depth, from one snapshot read at scrape time."""

    def __init__(self, threads: dict[str, int], queue: dict[str, int]) -> None:
        self._threads, self._queue = threads, queue

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The gauges (every status present, zero when no thread has it)."""
        threads = GaugeMetricFamily(f"{PREFIX}_threads", "Threads by status (read from the database at scrape).",
                                    labels=["status"])
        for status in Status:
            threads.add_metric([status.value], self._threads.get(status.value, 0))
        yield threads
        queue = GaugeMetricFamily(f"{PREFIX}_send_queue_depth",
                                  "Emails waiting in the send queue (not yet dispatched), by kind.", labels=["kind"])
        for kind, count in sorted(self._queue.items()):
            queue.add_metric([kind], count)
        yield queue


async def database_snapshot(conn: Any) -> DatabaseCollector:
    """One GROUP BY per figure: cheap on the status index and the pending-queue partial index."""
    cur = await conn.execute("SELECT status, count(*) AS n FROM threads GROUP BY status")
    threads = {r["status"]: r["n"] for r in await cur.fetchall()}
    cur = await conn.execute("SELECT kind, count(*) AS n FROM send_queue WHERE dispatched_at IS NULL GROUP BY kind")
    queue = {r["kind"]: r["n"] for r in await cur.fetchall()}
    return DatabaseCollector(threads, queue)


def check_access(request: Request, settings: Settings) -> None:
    """With EA_METRICS_TOKEN, `Authorization: Bearer <it>` is required; without, only local mode answers."""
    if settings.metrics_token is None:
        if settings.local_mode:
            return  # loopback (or the allowed container subnet) only
        raise HTTPException(404, "Metrics are off outside local mode until EA_METRICS_TOKEN is set.")
    given = request.headers.get("authorization", "")
    expected = f"Bearer {settings.metrics_token.get_secret_value()}"
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(401, "Send Authorization: Bearer <EA_METRICS_TOKEN>.",
                            headers={"WWW-Authenticate": "Bearer"})


def render(*collectors: Collector) -> Response:
    """This process's registry, followed by the given collectors."""
    body = generate_latest(REGISTRY)
    if collectors:
        extra = CollectorRegistry(auto_describe=False)
        for collector in collectors:
            extra.register(collector)
        body += generate_latest(extra)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus scrape of the server process (with the database figures)."""
    check_access(request, request.app.state.settings)
    async with request.app.state.services.pool.connection() as conn:
        snapshot = await database_snapshot(conn)
    return render(snapshot)


def worker_app(settings: Settings) -> FastAPI:
    """The worker's own scrape endpoint (its counters only: the server reports the database figures) and /healthz."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    clients.install(app, settings)  # local mode: loopback and EA_LOCAL_ALLOWED_CLIENTS only, as the server

    @app.get("/healthz")
    async def worker_health() -> dict[str, str]:
        """Liveness of this worker's event loop (the container healthcheck asks it)."""
        return {"status": "ok"}

    @app.get("/metrics")
    async def worker_metrics(request: Request) -> Response:
        """Prometheus scrape of this worker process."""
        check_access(request, settings)
        return render()

    return app


async def serve_worker_metrics(settings: Settings, *, port: int) -> None:
    """Serve the worker's /metrics until cancelled."""
    import uvicorn

    class WorkerMetricsServer(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # the worker owns SIGINT/SIGTERM; this server stops when its task is cancelled

    config = uvicorn.Config(worker_app(settings), host=settings.worker_metrics_host, port=port, log_config=None,
                            access_log=False, lifespan="off")
    await WorkerMetricsServer(config).serve()
