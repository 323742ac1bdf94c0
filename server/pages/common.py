"""What every dashboard page shares: templates, the signed-in user, errors as pages, flash messages, form errors."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from uuid import UUID

import jinja2
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from agent.errors import AppError
from agent.google import mailboxes
from agent.text import without_controls
from agent.users import service as users
from runtime.services import Services
from server import csrf, i18n
from server.deps import SignInRequired
from server.i18n import gettext as _

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


def N_(message: str) -> str:  # noqa: N802 - the conventional gettext marker name
    """Mark a string for extraction; it is translated where it is shown."""
    return message


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True,
                             extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True)
    env.install_gettext_callables(i18n.raw_gettext, i18n.raw_ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(when=i18n.when, number=i18n.number, percent=i18n.percent)
    return env


_templates: Jinja2Templates | None = None


def templates() -> Jinja2Templates:
    """The template renderer, built on first use."""
    global _templates
    if _templates is None:
        _templates = Jinja2Templates(env=_environment())
    return _templates


class PageRoute(APIRoute):
    """A dashboard route: picks the language, and turns errors into pages instead of JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap the handler."""
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            i18n.activate(i18n.pick(request))
            try:
                return await handler(request)
            except SignInRequired:
                if request.headers.get("hx-request"):  # a poll or partial: send the whole page to sign-in
                    return Response(status_code=200, headers={"HX-Redirect": "/signin"})
                return RedirectResponse("/signin", status_code=303)
            except AppError as exc:
                return error_page(request, exc.status_code, exc.message)
            except RequestValidationError:
                return error_page(request, 404, _("This page does not exist."))

        return page_handler


async def mailbox(svc: Services, uid: UUID, email: str) -> dict[str, Any]:
    """The mailbox the assistant writes from and its state: connected, sandbox or disconnected (with why)."""
    async with svc.pool.connection() as conn:
        row = await mailboxes.for_user(conn, user_id=uid)
    if row is None:
        return {"address": email, "state": "sandbox", "reason": None}
    state = "connected" if row["status"] == "connected" else "disconnected"
    return {"address": row["email"], "state": state, "reason": row["disconnect_reason"]}


def form_text(form: Any, name: str, limit: int = 100_000) -> str:
    """A form field as text: browsers send CRLF line breaks, we store LF; control characters are dropped
    (agent/text.py's rule)."""
    value = form.get(name, "")
    return without_controls((value if isinstance(value, str) else "").replace("\r\n", "\n"))[:limit]


def flash(request: Request, message: str, kind: str = "ok") -> None:
    """A message shown once on the next page."""
    request.session.setdefault("flash", []).append({"text": message, "kind": kind})


def field_errors(exc: ValidationError) -> dict[str, str]:
    """The first error of each field, in words a non-engineer understands."""
    errors: dict[str, str] = {}
    for err in exc.errors():
        name = str(err["loc"][0]) if err.get("loc") else "form"
        errors.setdefault(name, _error_text(err))
    return errors


def _error_text(err: dict[str, Any]) -> str:
    kind, ctx = err.get("type", ""), err.get("ctx") or {}
    if kind in ("missing", "string_too_short") and ctx.get("min_length", 1) <= 1:
        return _("This field is required.")
    if kind == "string_too_long":
        return _("Too long: at most %(max)s characters.", max=ctx.get("max_length"))
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return _("Enter a whole number.")
    if kind in ("greater_than_equal", "less_than_equal"):
        return _("Enter a number in the allowed range.")
    if kind == "enum":
        return _("Choose one of the options.")
    if kind == "value_error" and "email" in str(err.get("msg", "")).lower():
        return _("Enter a valid email address, like name@example.com.")
    if kind == "uuid_parsing":
        return _("Choose one of the options.")
    return _("This value is not valid.")


async def page_context(request: Request) -> dict[str, Any]:
    """Sidebar and layout data: user, mailbox, language, CSRF token, flash messages.

    The page's PageUserDep has put the signed-in user on request.state; a page without it has no layout.
    """
    svc: Services = request.app.state.services
    uid: UUID | None = getattr(request.state, "user_id", None) or svc.local_user_id
    if uid is None:
        raise SignInRequired()
    async with svc.pool.connection() as conn:
        user = await users.get(conn, user_id=uid)
    return {
        "user": user, "mailbox": await mailbox(svc, uid, user["email"]), "local_mode": svc.settings.local_mode,
        "model_configured": svc.llm.configured, "csrf_token": csrf.token(request), "lang": i18n.current(),
        "languages": i18n.LANGUAGES, "flashes": request.session.pop("flash", []), "path": request.url.path,
    }


async def render(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
    """A full page (or an htmx partial when the template is one) with the layout's data."""
    return templates().TemplateResponse(request, name, {**await page_context(request), **context},
                                        status_code=status_code)


def partial(request: Request, name: str, **context: Any) -> Response:
    """A fragment for htmx: no layout data beyond the CSRF token and language."""
    return templates().TemplateResponse(request, name, {"csrf_token": csrf.token(request), "lang": i18n.current(),
                                                        **context})


def error_page(request: Request, status_code: int, message: str) -> Response:
    """A plain error page that needs no database."""
    return templates().TemplateResponse(request, "error.html", {"status_code": status_code, "message": message,
                                                                "lang": i18n.current()}, status_code=status_code)


def back(path: str) -> RedirectResponse:
    """Post/redirect/get."""
    return RedirectResponse(path, status_code=303)
