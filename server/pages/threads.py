"""Threads: the list, starting one, and a thread's page with its live correspondence and every action."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from agent.assistants import service as assistants
from agent.errors import AppError, Conflict, InvalidInput
from agent.events import service as events
from agent.text import without_controls
from agent.threads import messages
from agent.threads import service as threads
from agent.threads.models import Status, ThreadCreate
from agent.threads.service import ThreadFilter
from runtime.services import Services
from runtime.start import start_thread
from server import csrf
from server.actions import ACTIONS
from server.deps import PageUserDep, ServicesDep
from server.i18n import gettext as _
from server.pages.common import N_, PageRoute, back, field_errors, flash, form_text, partial, render

router = APIRouter(prefix="/threads", route_class=PageRoute, include_in_schema=False)
PAGE_SIZE = 50


def _uuid(value: str | None) -> UUID | None:
    try:
        return UUID(value) if value else None
    except ValueError:
        return None


def page_filter(status: str, q: str, assistant: str, campaign: str = "") -> ThreadFilter:
    """The list's filters from the page's fields (a bad value is ignored, as in the list)."""
    chosen = Status(status) if status in Status.__members__ else None
    q = without_controls(q).strip()[:200]
    return ThreadFilter(status=chosen, search=q or None, assistant_id=_uuid(assistant), campaign_id=_uuid(campaign))


def filter_query(where: ThreadFilter, *, api: bool = False) -> str:
    """The filters as a query string for links (the API names the persona assistant_id)."""
    pairs = {"status": where.status.value if where.status else "", "q": where.search or "",
             "assistant_id" if api else "assistant": str(where.assistant_id or ""),
             "campaign_id" if api else "campaign": str(where.campaign_id or "")}
    return urlencode({k: v for k, v in pairs.items() if v})


@router.get("")
async def index(request: Request, svc: ServicesDep, uid: PageUserDep, status: str = "", q: str = "",
                assistant: str = "", cursor: str = "", campaign: str = "") -> Response:
    """Threads, newest first: filter by status, assistant and campaign, search recipients and mail, page by cursor."""
    where = page_filter(status, q, assistant, campaign)
    async with svc.pool.connection() as conn:
        rows, next_cursor = await threads.list_page(conn, user_id=uid, status=where.status, search=where.search,
                                                    assistant_id=where.assistant_id, limit=PAGE_SIZE,
                                                    cursor=cursor or None, campaign_id=where.campaign_id)
        counts = await threads.counts_by_status(conn, user_id=uid)
        if where.search or where.assistant_id:
            matching = await threads.count_matching(conn, user_id=uid, where=where) if rows else 0
        else:
            matching = counts.get(where.status.value, 0) if where.status else sum(counts.values())
        personas = await assistants.list_for_user(conn, user_id=uid, include_archived=True)
    names = {a.id: a.name for a in personas}
    return await render(request, "threads.html", rows=rows, next_cursor=next_cursor, counts=counts,
                        total=sum(counts.values()), status=where.status.value if where.status else "",
                        q=where.search or "", assistant=str(where.assistant_id or ""), personas=personas,
                        names=names, first_page=not cursor, matching=matching,
                        export_query=filter_query(where, api=True), campaign=str(where.campaign_id or ""))


async def _new_form(request: Request, svc: Services, uid: UUID, values: dict[str, Any], errors: dict[str, str],
                    status_code: int = 200) -> Response:
    async with svc.pool.connection() as conn:
        personas = await assistants.list_for_user(conn, user_id=uid)
    return await render(request, "thread_new.html", status_code=status_code, personas=personas, values=values,
                        errors=errors)


@router.get("/new")
async def new(request: Request, svc: ServicesDep, uid: PageUserDep, assistant: str = "") -> Response:
    """Start outreach to one recipient."""
    return await _new_form(request, svc, uid, {"assistant_id": assistant}, {})


@router.post("/new")
async def create(request: Request, svc: ServicesDep, uid: PageUserDep) -> Response:
    """Create the thread; the assistant writes the first email in the background."""
    form = await csrf.checked_form(request)
    values = {k: form_text(form, k).strip() for k in ("assistant_id", "recipient_email", "recipient_name",
                                                         "recipient_company", "context")}
    try:
        data = ThreadCreate.model_validate(values)
    except ValidationError as exc:
        return await _new_form(request, svc, uid, values, field_errors(exc), 422)
    try:
        async with svc.pool.connection() as conn:
            row = await start_thread(svc, conn, uid, data)
    except Conflict as exc:
        return await _new_form(request, svc, uid, values, {"recipient_email": exc.message}, 409)
    except InvalidInput as exc:
        return await _new_form(request, svc, uid, values, {"assistant_id": exc.message}, 422)
    flash(request, _("Outreach started. The assistant is writing the first email."))
    return back(f"/threads/{row.id}")


async def _detail(svc: Services, uid: UUID, thread_id: UUID) -> dict[str, Any]:
    async with svc.pool.connection() as conn:
        thread = await threads.get(conn, user_id=uid, thread_id=thread_id)
        msgs = await messages.list_for_thread(conn, user_id=uid, thread_id=thread_id)
        evs = await events.list_for_thread(conn, user_id=uid, thread_id=thread_id)
        persona = await assistants.get(conn, user_id=uid, assistant_id=thread.assistant_id)
    decisions = {mid: e for e in evs if e["kind"] == "decision" for mid in e["detail"].get("message_ids", [])}
    timeline = [{"msg": m, "decision": decisions.get(str(m["id"])) if m["direction"] == "in" else None} for m in msgs]
    stamp = f"{thread.updated_at}|{len(msgs)}|{evs[-1]['id'] if evs else 0}"
    version = hashlib.sha1(stamp.encode()).hexdigest()[:16]
    sandbox = thread.transport == "sandbox" and any(m["direction"] == "out" for m in msgs)
    return {"thread": thread, "timeline": timeline, "events": evs, "persona": persona, "version": version,
            "sandbox_reply": sandbox and thread.status is not Status.closed}


@router.get("/{thread_id}")
async def detail(request: Request, thread_id: UUID, svc: ServicesDep, uid: PageUserDep) -> Response:
    """The whole correspondence with the decisions, the draft waiting for approval and the actions."""
    return await render(request, "thread.html", errors={}, **await _detail(svc, uid, thread_id))


@router.get("/{thread_id}/live")
async def live(request: Request, thread_id: UUID, svc: ServicesDep, uid: PageUserDep, v: str = "") -> Response:
    """The live part of the thread page; 204 (nothing to swap) while nothing changed."""
    data = await _detail(svc, uid, thread_id)
    if data["version"] == v:
        return Response(status_code=204)
    return partial(request, "partials/thread_live.html", errors={}, **data)


DONE = {
    "approve": N_("Approved. The email is being sent."),
    "reject": N_("Draft rejected; nothing was sent. The thread is yours now."),
    "regenerate": N_("The assistant is writing a new draft."),
    "pause": N_("Paused. Nothing is sent until you resume."),
    "resume": N_("Resumed."),
    "takeover": N_("You have the conversation now: write your reply below."),
    "handback": N_("The assistant has the conversation again."),
    "stop": N_("Thread stopped. Nothing more is sent."),
    "reply": N_("Your reply is being sent."),
    "sandbox-reply": N_("Reply delivered to the sandbox mailbox; the assistant is reading it."),
}
# The form field that carries a body field, where the thread page names it differently.
FORM_NAMES = {"sandbox-reply": {"text": "sandbox_text"}}
# Where a body field's error shows on the thread page: the form field's name with this prefix.
ERROR_PREFIX = {"reply": "reply_", "approve": "draft_"}


@router.post("/{thread_id}/{action}")
async def act(request: Request, thread_id: UUID, action: str, svc: ServicesDep, uid: PageUserDep) -> Response:
    """Run one thread action from its form (the API's action table); errors show next to the field or as a message."""
    form = await csrf.checked_form(request)
    names = FORM_NAMES.get(action, {})
    try:
        entry = ACTIONS.get(action)
        if entry is None:
            raise InvalidInput(_("Unknown action."))
        body = None
        if entry.body is not None:
            values = {field: form_text(form, names.get(field, field)).strip()
                      for field in entry.body.model_fields if names.get(field, field) in form}
            if not values.get("wait_id"):
                values.pop("wait_id", None)
            if action == "approve":  # an unchanged draft is approved as it is, not as an edit
                async with svc.pool.connection() as conn:
                    draft = (await threads.get(conn, user_id=uid, thread_id=thread_id)).pending_draft or {}
                values = {k: v for k, v in values.items() if k == "wait_id" or v != (draft.get(k) or "").strip()}
            body = entry.body.model_validate(values)
        await entry.run(svc, user_id=uid, thread_id=thread_id, body=body)
    except ValidationError as exc:
        prefix = ERROR_PREFIX.get(action, "")
        errors = {names.get(k) or prefix + k: v for k, v in field_errors(exc).items()}
        return await _after(request, svc, uid, thread_id, errors=errors)
    except AppError as exc:
        if exc.status_code == 404:
            raise
        return await _after(request, svc, uid, thread_id, notice=exc.message, kind="bad")
    return await _after(request, svc, uid, thread_id, notice=_(DONE[action]), kind="ok")


async def _after(request: Request, svc: Services, uid: UUID, thread_id: UUID, *,
                 errors: dict[str, str] | None = None, notice: str = "", kind: str = "ok") -> Response:
    """htmx: the live region with the outcome; without JavaScript: the page again (errors) or a redirect."""
    if request.headers.get("hx-request"):
        return partial(request, "partials/thread_live.html", errors=errors or {}, notice=notice, notice_kind=kind,
                       **await _detail(svc, uid, thread_id))
    if errors:
        return await render(request, "thread.html", status_code=422, errors=errors,
                            **await _detail(svc, uid, thread_id))
    flash(request, notice, kind)
    return back(f"/threads/{thread_id}")
