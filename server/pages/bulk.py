"""Bulk actions on the thread list: choose rows or everything the filter matches, confirm the count, see each outcome."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request, Response
from starlette.datastructures import FormData

from agent.errors import InvalidInput
from agent.threads import service as threads
from agent.threads.service import ThreadFilter
from server import bulk, csrf
from server.deps import PageUserDep, ServicesDep
from server.i18n import gettext as _
from server.pages.common import N_, PageRoute, back, flash, form_text, render
from server.pages.threads import filter_query, page_filter

router = APIRouter(prefix="/threads/bulk", route_class=PageRoute, include_in_schema=False)
LABELS = {"pause": N_("Pause"), "resume": N_("Resume"), "stop": N_("Stop"), "takeover": N_("Take over")}
SHOWN = 200
"""Recipients named on the confirmation page (the count always covers all of them)."""


def _ids(form: FormData) -> list[UUID]:
    try:
        return [UUID(v) for v in form.getlist("id") if isinstance(v, str)]
    except ValueError as exc:
        raise InvalidInput(_("The selection is not valid. Reload the list and choose again.")) from exc


def _cutoff(form: FormData) -> datetime | None:
    value = form_text(form, "created_before")
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError as exc:
        raise InvalidInput(_("The selection is not valid. Reload the list and choose again.")) from exc


async def _prepare(request: Request, svc: ServicesDep, uid: UUID, *, confirming: bool) -> dict[str, Any] | Response:
    """The action, the filter and the chosen threads from the posted form; back to the list with why when unusable."""
    form = await csrf.checked_form(request)
    action = form_text(form, "action")
    base = page_filter(form_text(form, "status"), form_text(form, "q"), form_text(form, "assistant"),
                       form_text(form, "campaign"))
    query = filter_query(base)
    listing = "/threads" + ("?" + query if query else "")
    try:
        bulk.check_action(action)
        everything = form_text(form, "scope") == "all"
        cutoff = datetime.now(UTC) if confirming else _cutoff(form)
        where = ThreadFilter(status=base.status, search=base.search, assistant_id=base.assistant_id,
                             created_before=cutoff)
        ids = await bulk.resolve(svc, user_id=uid, ids=None if everything else _ids(form), where=where)
    except InvalidInput as exc:
        flash(request, exc.message, "bad")
        return back(listing)
    return {"action": action, "where": base, "listing": listing, "everything": everything, "ids": ids,
            "cutoff": cutoff.isoformat() if cutoff else "", "label": _(LABELS[action])}


@router.post("")
async def confirm(request: Request, svc: ServicesDep, uid: PageUserDep) -> Response:
    """The confirmation: which action, on how many threads (named), before anything changes."""
    found = await _prepare(request, svc, uid, confirming=True)
    if isinstance(found, Response):
        return found
    async with svc.pool.connection() as conn:
        named = await threads.recipients(conn, user_id=uid, thread_ids=found["ids"][:SHOWN])
    return await render(request, "threads_bulk.html", named=[named[i] for i in found["ids"][:SHOWN] if i in named],
                        outcomes=None, **found)


@router.post("/run")
async def run(request: Request, svc: ServicesDep, uid: PageUserDep) -> Response:
    """Run the confirmed action on each thread; the page lists what happened to each."""
    found = await _prepare(request, svc, uid, confirming=False)
    if isinstance(found, Response):
        return found
    outcomes = await bulk.run(svc, user_id=uid, action=found["action"], thread_ids=found["ids"])
    done = sum(1 for o in outcomes if o.outcome == "done")
    shown = [{**asdict(o), "reason": _(o.reason) if o.reason else None} for o in outcomes]
    return await render(request, "threads_bulk.html", outcomes=shown, done=done, skipped=len(outcomes) - done,
                        **found)
