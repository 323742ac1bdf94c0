"""Public one-click unsubscribe (RFC 8058): no sign-in, the signed token is the authority."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from agent import unsubscribe
from agent.keyring import KeyRing
from server.deps import ServicesDep

router = APIRouter(tags=["unsubscribe"])
TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
HEADERS = {
    "Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
}


@cache
def _template() -> jinja2.Template:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True)
    return env.get_template("public_unsubscribe.html")


def _page(status_code: int, **values: Any) -> HTMLResponse:
    html = _template().render({"error": None, "done": False, "email": "", "sender": "", "action": "", **values})
    return HTMLResponse(html, status_code=status_code, headers=HEADERS)


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _keyring(request: Request) -> KeyRing:
    return request.app.state.keyring


@router.get("/u/{token}", include_in_schema=False)
async def confirm_page(token: str, request: Request, svc: ServicesDep) -> Response:
    """A confirmation page with one button; opening the link changes nothing (mail scanners open links)."""
    try:
        asked = unsubscribe.read_token(_keyring(request), token)
    except unsubscribe.BadToken as exc:
        return _page(exc.status_code, error=exc.message)
    async with svc.pool.connection() as conn:
        shown = await unsubscribe.describe(conn, request=asked)
    return _page(200, email=shown["email"], sender=shown["sender"], done=shown["done"], action=request.url.path)


@router.post("/u/{token}")
async def one_click(token: str, request: Request, svc: ServicesDep) -> Response:
    """Unsubscribe for good: the one-click POST of a mail client (body List-Unsubscribe=One-Click) or the page's
    button. Suppresses the address and closes the open threads to it; repeating it is harmless."""
    try:
        asked = unsubscribe.read_token(_keyring(request), token)
    except unsubscribe.BadToken as exc:
        if _wants_html(request):
            return _page(exc.status_code, error=exc.message)
        return JSONResponse({"detail": exc.message}, status_code=exc.status_code, headers=HEADERS)
    async with svc.pool.connection() as conn:
        await unsubscribe.apply(conn, request=asked)
        shown = await unsubscribe.describe(conn, request=asked)
    if _wants_html(request):
        return _page(200, email=shown["email"], sender=shown["sender"], done=True)
    return JSONResponse({"status": "unsubscribed"}, headers=HEADERS)
