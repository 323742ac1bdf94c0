"""Local mode's client allow-list: only loopback and EA_LOCAL_ALLOWED_CLIENTS may talk to an unauthenticated server."""

from __future__ import annotations

import ipaddress
import logging

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from agent.config import IPNetwork, Settings

log = logging.getLogger(__name__)

REFUSED = ("This Email Assistant runs in local mode (no sign-in) and answers only this machine. "
           "Configure Google sign-in to serve other clients.")


def client_allowed(client: tuple[str, int] | None, networks: list[IPNetwork]) -> bool:
    """Loopback, an address inside one of the networks, or no network peer at all (a Unix socket)."""
    if client is None:
        return True
    try:
        address = ipaddress.ip_address(client[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or any(address in network for network in networks)


class ClientAllowList:
    """Answer 403 to any HTTP or WebSocket client outside loopback and the allowed networks."""

    def __init__(self, app: ASGIApp, *, networks: list[IPNetwork]) -> None:
        self.app = app
        self.networks = networks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and not client_allowed(scope.get("client"), self.networks):
            log.warning("local mode: refused a request from %s", (scope.get("client") or ("?",))[0])
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            else:
                await JSONResponse({"detail": REFUSED}, status_code=403)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def install(app, settings: Settings) -> None:  # noqa: ANN001 - a FastAPI app
    """In local mode, refuse every client that is neither loopback nor in EA_LOCAL_ALLOWED_CLIENTS."""
    if settings.local_mode:
        app.add_middleware(ClientAllowList, networks=settings.local_client_networks())
