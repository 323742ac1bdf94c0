"""Browser-facing protections: cross-site requests refused by Origin, and (local mode) a Host allow-list."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from agent.config import Settings

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# Called by Google's and mail providers' servers, which send no Origin; both authenticate otherwise.
EXEMPT_PREFIXES = ("/webhooks/", "/u/")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def allowed_origins(settings: Settings) -> set[str]:
    """Origins whose pages may send unsafe requests: ours (and its loopback aliases in local mode)."""
    base = urlsplit(settings.base_url)
    origins = {f"{base.scheme}://{base.netloc}"}
    if settings.local_mode:
        port = f":{base.port}" if base.port else ""
        origins |= {f"{base.scheme}://{host}{port}" for host in LOOPBACK_HOSTS}
    return origins


class OriginCheck:
    """Refuse unsafe requests whose Origin is another site (CSRF defence for the JSON API and forms)."""

    def __init__(self, app: ASGIApp, *, origins: set[str]) -> None:
        self.app = app
        self.origins = origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS \
                and not scope["path"].startswith(EXEMPT_PREFIXES):
            origin = dict(scope["headers"]).get(b"origin", b"").decode("latin-1")
            if origin and origin not in self.origins:
                response = JSONResponse({"detail": "Cross-site request refused."}, status_code=403)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def install(app, settings: Settings) -> None:  # noqa: ANN001 - a FastAPI app
    """Add the protections to the app."""
    app.add_middleware(OriginCheck, origins=allowed_origins(settings))
    if settings.local_mode:  # one user, no sign-in: a rebound DNS name must not reach the API
        host = urlsplit(settings.base_url).hostname or "127.0.0.1"
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=sorted({host, "127.0.0.1", "localhost", "::1"}))
