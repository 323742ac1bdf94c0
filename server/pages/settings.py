"""Settings: the mailbox connection, sending limits, and the suppression list (view, add, remove, import)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from agent.errors import InvalidInput
from agent.sending import settings as sending
from agent.sending.settings import SendingSettingsUpdate
from agent.stats import service as stats
from agent.suppressions import service as suppressions
from runtime.sending import defer_dispatch
from runtime.services import Services
from server import csrf
from server.deps import PageUserDep, ServicesDep
from server.i18n import gettext as _
from server.pages.common import PageRoute, back, field_errors, flash, form_text, render

router = APIRouter(prefix="/settings", route_class=PageRoute, include_in_schema=False)
MAX_PASTED = 10_000
SPLIT = re.compile(r"[\s,;]+")
SENDING_FIELDS = ("daily_cap", "spacing_min_seconds", "spacing_max_seconds", "per_thread_daily_max",
                  "bounce_threshold", "bounce_window", "timezone", "digest_interval_hours")
SUMMARY = "You suppressed {email}; nothing more is sent to it."


async def _page(request: Request, svc: Services, uid: UUID, errors: dict[str, str] | None = None,
                values: dict[str, Any] | None = None, status_code: int = 200) -> Response:
    async with svc.pool.connection() as conn:
        items = await suppressions.list_for_user(conn, user_id=uid)
        sent_today = await stats.sent_since(conn, user_id=uid, since=datetime.now(UTC) - timedelta(days=1))
        limits = sending.to_model(await sending.get_row(conn, user_id=uid))
    shown = limits.model_dump()
    shown["bounce_threshold"] = round(limits.bounce_threshold * 100, 2)
    return await render(request, "settings.html", status_code=status_code, suppressions=items, sent_today=sent_today,
                        limits=limits, sending_values={**shown, **(values or {}).get("sending", {})},
                        errors=errors or {}, values=values or {})


@router.get("")
async def index(request: Request, svc: ServicesDep, uid: PageUserDep) -> Response:
    """The settings page."""
    return await _page(request, svc, uid)


@router.post("/sending")
async def update_sending(request: Request, svc: ServicesDep, uid: PageUserDep) -> Response:
    """Change the mailbox's sending limits (the same rules as the API)."""
    form = await csrf.checked_form(request)
    raw = {k: form_text(form, k).strip() for k in SENDING_FIELDS}
    data: dict[str, Any] = {k: v for k, v in raw.items() if v != ""}
    errors: dict[str, str] = {}
    if "bounce_threshold" in data:
        try:
            data["bounce_threshold"] = float(data["bounce_threshold"].replace(",", ".")) / 100
        except ValueError:
            errors["bounce_threshold"] = _("Enter a number, e.g. 5 for five percent.")
    data["digest_enabled"] = "digest_enabled" in form
    data["resume_outreach"] = "resume_outreach" in form
    try:
        changes = SendingSettingsUpdate.model_validate(data)
    except ValidationError as exc:
        errors = {**field_errors(exc), **errors}
        if "form" in errors:
            errors.setdefault("spacing_max_seconds", _("The longest gap must not be shorter than the shortest."))
            errors.pop("form")
    if errors:
        return await _page(request, svc, uid, errors, {"sending": raw}, 422)
    try:
        async with svc.pool.connection() as conn:
            await sending.update(conn, user_id=uid, changes=changes, now=svc.clock())
    except InvalidInput as exc:
        field = exc.message.split(":", 1)[0] if exc.message.startswith("daily_cap") else "spacing_max_seconds"
        return await _page(request, svc, uid, {field: exc.message.split(": ", 1)[-1]}, {"sending": raw}, 422)
    await defer_dispatch(svc.jobs, user_id=uid)  # new limits may release queued email now
    flash(request, _("Sending limits saved."))
    return back("/settings#limits")


async def _suppress(svc: Services, uid: UUID, emails: list[str], reason: str) -> tuple[int, int]:
    async with svc.pool.connection() as conn:
        added, closed = await suppressions.suppress_many(
            conn, user_id=uid, emails=emails, reason=reason, close_reason="suppressed", actor="user",
            summary=SUMMARY)
    return len(added), len(closed)


@router.post("/suppressions")
async def add(request: Request, svc: ServicesDep, uid: PageUserDep) -> Response:
    """Suppress one address: nothing is sent to it again; open threads to it close."""
    form = await csrf.checked_form(request)
    raw, reason = form_text(form, "email").strip(), form_text(form, "reason").strip()[:200]
    try:
        email = suppressions.normalize_email(raw)
    except InvalidInput:
        return await _page(request, svc, uid, {"email": _("Enter a valid email address, like name@example.com.")},
                           {"email": raw, "reason": reason}, 422)
    _added, closed = await _suppress(svc, uid, [email], reason or _("added by you"))
    flash(request, _("%(email)s is suppressed: nothing will be sent to it.", email=email) +
          (" " + _("Open threads closed: %(n)s.", n=closed) if closed else ""))
    return back("/settings#suppressions")


@router.post("/suppressions/remove")
async def remove(request: Request, svc: ServicesDep, uid: PageUserDep) -> Response:
    """Lift a suppression (closed threads stay closed)."""
    form = await csrf.checked_form(request)
    email = form_text(form, "email").strip()
    async with svc.pool.connection() as conn:
        removed = await suppressions.remove(conn, user_id=uid, email=email)
    flash(request, _("%(email)s removed from the suppression list.", email=email) if removed
          else _("%(email)s was not on the list.", email=email), "ok" if removed else "bad")
    return back("/settings#suppressions")


@router.post("/suppressions/import")
async def import_list(request: Request, svc: ServicesDep, uid: PageUserDep) -> Response:
    """Suppress many addresses: pasted (one per line or comma-separated) and/or a CSV with an email column."""
    form = await csrf.checked_form(request)
    pasted = form_text(form, "addresses")
    tokens = [t.strip().strip("\"'") for t in SPLIT.split(pasted) if t.strip()]
    upload = form.get("file")
    try:
        if isinstance(upload, UploadFile) and upload.filename:
            tokens += [value for _row, value in suppressions.emails_from_csv(await upload.read(5_000_001))]
    except InvalidInput as exc:
        return await _page(request, svc, uid, {"file": exc.message}, {"addresses": pasted[:2000]}, 422)
    if not tokens:
        return await _page(request, svc, uid, {"addresses": _("Paste at least one email address or choose a file.")},
                           {"addresses": pasted[:2000]}, 422)
    if len(tokens) > MAX_PASTED:
        return await _page(request, svc, uid, {"addresses": _("At most 10,000 addresses at a time.")}, {}, 422)
    valid, bad = [], 0
    for value in tokens:
        try:
            valid.append(suppressions.normalize_email(value))
        except InvalidInput:
            bad += 1
    added, closed = await _suppress(svc, uid, valid, _("imported")) if valid else (0, 0)
    flash(request, _("%(added)s addresses suppressed; %(bad)s entries were not valid addresses.", added=added, bad=bad)
          + (" " + _("Open threads closed: %(n)s.", n=closed) if closed else ""))
    return back("/settings#suppressions")
