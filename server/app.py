"""The FastAPI application: API, health, and the in-process worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.middleware.sessions import SessionMiddleware

from agent.config import Settings
from agent.keyring import load_keyring
from runtime.google.pubsub import MailListeners
from runtime.startup import open_services
from runtime.worker import run as worker_run
from server import api, auth, clients, errors, metrics, pages, security
from server.logging_context import RequestContext

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    """Build the app for these settings; resources open in the lifespan, not here."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_services(settings) as services:
            app.state.services = services
            worker = None
            if settings.worker_in_process:
                worker = asyncio.create_task(worker_run(services, name="in-process", install_signal_handlers=False))
            listeners = MailListeners(services)
            await listeners.start()
            if not services.llm.configured:
                log.warning("No language model configured: threads will park until one is. Set OPENAI_API_KEY "
                            "or OPENAI_BASE_URL (Ollama/vLLM) and EA_LLM_MODEL.")
            log.info("Email Assistant ready on %s (%s mode)", settings.base_url,
                     "local" if settings.local_mode else "Google")
            try:
                yield
            finally:
                await listeners.stop()
                if worker is not None:
                    worker.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await worker

    # /docs: Swagger UI served from the fastapi-offline package, no CDN, works offline. No /redoc: ReDoc fetches
    # its logo from a CDN whatever the options, and one API page is enough.
    app = FastAPIOffline(title="Email Assistant", version="0.1.0", lifespan=lifespan, redoc_url=None,
                         description="Self-hostable AI outreach assistant that writes from your own Gmail.",
                         static_url="/static-offline-docs")
    app.state.settings = settings
    app.state.keyring = keyring = load_keyring(settings)
    app.add_middleware(RequestContext)  # inside the session: sees the signed-in user
    app.add_middleware(SessionMiddleware, secret_key=keyring.session_secret, session_cookie="ea_session",
                       same_site="lax", https_only=settings.base_url.startswith("https://"),
                       max_age=settings.session_max_hours * 3600)  # the server-side session row decides, see deps
    errors.install(app)
    security.install(app, settings)
    clients.install(app, settings)
    api.install(app)
    app.include_router(metrics.router)
    app.include_router(auth.router)
    pages.install(app)
    return app
