"""Settings: the mailbox connection, the suppression list (view, add, remove, import), sending limits."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from email_validator import EmailNotValidError, validate_email
from fastapi import APIRouter, Request, Response
from starlette.datastructures import UploadFile

from agent.stats import service as stats
from agent.suppressions import service as suppressions
from server import csrf
from server.i18n import gettext as _
from server.routes.pages_common import PageRoute, back, flash, render, services, user_id

router = APIRouter(prefix="/settings", route_class=PageRoute, include_in_schema=False)
MAX_IMPORT = 10_000
SPLIT = re.compile(r"[\s,;]+")


def _valid_email(value: str) -> str | None:
    try:
        return validate_email(value, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None


async def _page(request: Request, errors: dict[str, str] | None = None, values: dict[str, Any] | None = None,
                status_code: int = 200) -> Response:
    uid = user_id(request)
    async with services(request).pool.connection() as conn:
        items = await suppressions.list_for_user(conn, user_id=uid)
        sent_today = await stats.sent_since(conn, user_id=uid, since=datetime.now(timezone.utc) - timedelta(days=1))
    return await render(request, "settings.html", status_code=status_code, suppressions=items,
                        sent_today=sent_today, errors=errors or {}, values=values or {})


@router.get("")
async def index(request: Request) -> Response:
    """The settings page."""
    return await _page(request)


@router.post("/suppressions")
async def add(request: Request) -> Response:
    """Suppress one address: no email will ever be sent to it."""
    uid = user_id(request)
    form = await csrf.checked_form(request)
    raw, reason = str(form.get("email", "")).strip(), str(form.get("reason", "")).strip()[:200]
    email = _valid_email(raw)
    if email is None:
        return await _page(request, {"email": _("Enter a valid email address, like name@example.com.")},
                           {"email": raw, "reason": reason}, 422)
    async with services(request).pool.connection() as conn:
        await suppressions.add(conn, user_id=uid, email=email, reason=reason or _("added by you"))
    flash(request, _("%(email)s is suppressed: nothing will be sent to it.", email=email))
    return back("/settings#suppressions")


@router.post("/suppressions/remove")
async def remove(request: Request) -> Response:
    """Lift a suppression."""
    uid = user_id(request)
    form = await csrf.checked_form(request)
    email = str(form.get("email", "")).strip()
    async with services(request).pool.connection() as conn:
        removed = await suppressions.remove(conn, user_id=uid, email=email)
    flash(request, _("%(email)s removed from the suppression list.", email=email) if removed
          else _("%(email)s was not on the list.", email=email), "ok" if removed else "bad")
    return back("/settings#suppressions")


@router.post("/suppressions/import")
async def import_list(request: Request) -> Response:
    """Suppress many addresses: pasted, or a file with one address per line (a CSV works too)."""
    uid = user_id(request)
    form = await csrf.checked_form(request)
    text = str(form.get("addresses", ""))
    upload = form.get("file")
    if isinstance(upload, UploadFile) and upload.filename:
        text += "\n" + (await upload.read(5_000_001)).decode("utf-8-sig", errors="replace")
    tokens = [t.strip().strip('"\'') for t in SPLIT.split(text) if "@" in t]
    if not tokens:
        return await _page(request, {"addresses": _("Paste at least one email address or choose a file.")},
                           {"addresses": text[:2000]}, 422)
    if len(tokens) > MAX_IMPORT:
        return await _page(request, {"addresses": _("At most 10,000 addresses at a time.")}, {}, 422)
    valid = sorted({e for e in map(_valid_email, tokens) if e})
    async with services(request).pool.connection() as conn:
        for email in valid:
            await suppressions.add(conn, user_id=uid, email=email, reason=_("imported"))
    flash(request, _("%(added)s addresses suppressed; %(bad)s entries were not valid addresses.", added=len(valid),
                     bad=len(tokens) - len(valid)))
    return back("/settings#suppressions")
