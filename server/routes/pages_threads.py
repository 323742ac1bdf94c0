"""Threads: the list, starting one, and a thread's page with its live correspondence and every action."""

from __future__ import annotations

import hashlib
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from agent.assistants import service as assistants
from agent.errors import AppError, Conflict, InvalidInput
from agent.events import service as events
from agent.threads import messages
from runtime import actions
from agent.threads import service as threads
from agent.threads.models import DraftEdit, Feedback, HumanReply, SandboxReply, Status, ThreadCreate, WaitRef
from runtime.start import start_thread
from server import csrf
from server.i18n import gettext as _
from server.routes.pages_common import (N_, PageRoute, back, field_errors, flash, form_text, partial, render, services,
                                       user_id)

router = APIRouter(prefix="/threads", route_class=PageRoute, include_in_schema=False)
PAGE_SIZE = 50


def _uuid(value: str | None) -> UUID | None:
    try:
        return UUID(value) if value else None
    except ValueError:
        return None


@router.get("")
async def index(request: Request, status: str = "", q: str = "", assistant: str = "", cursor: str = "") -> Response:
    """Threads, newest first: filter by status and assistant, search by recipient, page by cursor."""
    uid = user_id(request)
    chosen = Status(status) if status in Status.__members__ else None
    assistant_id = _uuid(assistant)
    q = q.strip()[:200]
    async with services(request).pool.connection() as conn:
        rows, next_cursor = await threads.list_page(conn, user_id=uid, status=chosen, search=q or None,
                                                    assistant_id=assistant_id, limit=PAGE_SIZE, cursor=cursor or None)
        counts = await threads.counts_by_status(conn, user_id=uid)
        personas = await assistants.list_for_user(conn, user_id=uid, include_archived=True)
    names = {a.id: a.name for a in personas}
    return await render(request, "threads.html", rows=rows, next_cursor=next_cursor, counts=counts,
                        total=sum(counts.values()), status=chosen.value if chosen else "", q=q,
                        assistant=str(assistant_id or ""), personas=personas, names=names, first_page=not cursor)


async def _new_form(request: Request, uid: UUID, values: dict[str, Any], errors: dict[str, str],
                    status_code: int = 200) -> Response:
    async with services(request).pool.connection() as conn:
        personas = await assistants.list_for_user(conn, user_id=uid)
    return await render(request, "thread_new.html", status_code=status_code, personas=personas, values=values,
                        errors=errors)


@router.get("/new")
async def new(request: Request, assistant: str = "") -> Response:
    """Start outreach to one recipient."""
    uid = user_id(request)
    return await _new_form(request, uid, {"assistant_id": assistant}, {})


@router.post("/new")
async def create(request: Request) -> Response:
    """Create the thread; the assistant writes the first email in the background."""
    uid = user_id(request)
    form = await csrf.checked_form(request)
    values = {k: form_text(form, k).strip() for k in ("assistant_id", "recipient_email", "recipient_name",
                                                         "recipient_company", "context")}
    try:
        data = ThreadCreate.model_validate(values)
    except ValidationError as exc:
        return await _new_form(request, uid, values, field_errors(exc), 422)
    svc = services(request)
    try:
        async with svc.pool.connection() as conn:
            row = await start_thread(svc, conn, uid, data)
    except Conflict as exc:
        return await _new_form(request, uid, values, {"recipient_email": exc.message}, 409)
    except InvalidInput as exc:
        return await _new_form(request, uid, values, {"assistant_id": exc.message}, 422)
    flash(request, _("Outreach started. The assistant is writing the first email."))
    return back(f"/threads/{row.id}")


async def _detail(request: Request, uid: UUID, thread_id: UUID) -> dict[str, Any]:
    async with services(request).pool.connection() as conn:
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
            "sandbox_reply": sandbox and thread.status != "closed"}


@router.get("/{thread_id}")
async def detail(request: Request, thread_id: UUID) -> Response:
    """The whole correspondence with the decisions, the draft waiting for approval and the actions."""
    uid = user_id(request)
    return await render(request, "thread.html", errors={}, **await _detail(request, uid, thread_id))


@router.get("/{thread_id}/live")
async def live(request: Request, thread_id: UUID, v: str = "") -> Response:
    """The live part of the thread page; 204 (nothing to swap) while nothing changed."""
    uid = user_id(request)
    data = await _detail(request, uid, thread_id)
    if data["version"] == v:
        return Response(status_code=204)
    return partial(request, "partials/thread_live.html", errors={}, **data)


async def _invalid(request: Request, uid: UUID, thread_id: UUID, errors: dict[str, str]) -> Response:
    return await render(request, "thread.html", status_code=422, errors=errors,
                        **await _detail(request, uid, thread_id))


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


@router.post("/{thread_id}/{action}")
async def act(request: Request, thread_id: UUID, action: str) -> Response:
    """Run one thread action from its form; errors show next to the field or as a message."""
    uid = user_id(request)
    form = await csrf.checked_form(request)
    svc = services(request)
    text = lambda name: form_text(form, name).strip()  # noqa: E731
    try:
        if action == "approve":
            async with svc.pool.connection() as conn:
                draft = (await threads.get(conn, user_id=uid, thread_id=thread_id)).pending_draft or {}
            edits = {k: text(k) for k in ("subject", "text") if k in form and text(k) != (draft.get(k) or "").strip()}
            await actions.approve(svc, user_id=uid, thread_id=thread_id,
                                  body=DraftEdit(wait_id=text("wait_id") or None, **edits))
        elif action == "reject":
            await actions.reject(svc, user_id=uid, thread_id=thread_id, body=WaitRef(wait_id=text("wait_id") or None))
        elif action == "regenerate":
            await actions.regenerate(svc, user_id=uid, thread_id=thread_id,
                                     body=Feedback(wait_id=text("wait_id") or None, feedback=text("feedback")))
        elif action == "reply":
            await actions.human_reply(svc, user_id=uid, thread_id=thread_id, body=HumanReply(text=text("text")))
        elif action == "sandbox-reply":
            await actions.sandbox_reply(svc, user_id=uid, thread_id=thread_id,
                                        body=SandboxReply(text=text("sandbox_text")))
        elif action in ("pause", "resume", "takeover", "handback", "stop"):
            await getattr(actions, action)(svc, user_id=uid, thread_id=thread_id)
        else:
            raise InvalidInput(_("Unknown action."))
    except ValidationError as exc:
        prefix = {"reply": "reply_", "sandbox-reply": "sandbox_", "regenerate": "", "approve": "draft_"}.get(action, "")
        errors = {("sandbox_text" if action == "sandbox-reply" else prefix + k): v
                  for k, v in field_errors(exc).items()}
        return await _after(request, uid, thread_id, errors=errors)
    except AppError as exc:
        if exc.status_code == 404:
            raise
        return await _after(request, uid, thread_id, notice=exc.message, kind="bad")
    return await _after(request, uid, thread_id, notice=_(DONE[action]), kind="ok")


async def _after(request: Request, uid: UUID, thread_id: UUID, *, errors: dict[str, str] | None = None,
                 notice: str = "", kind: str = "ok") -> Response:
    """htmx: the live region with the outcome; without JavaScript: the page again (errors) or a redirect."""
    if request.headers.get("hx-request"):
        return partial(request, "partials/thread_live.html", errors=errors or {}, notice=notice, notice_kind=kind,
                       **await _detail(request, uid, thread_id))
    if errors:
        return await _invalid(request, uid, thread_id, errors)
    flash(request, notice, kind)
    return back(f"/threads/{thread_id}")
