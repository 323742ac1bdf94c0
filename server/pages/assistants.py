"""Assistant profiles: list, create, edit, archive, and a preview of the first email."""

from __future__ import annotations

from datetime import UTC, datetime
from datetime import time as time_of_day
from typing import Any
from uuid import UUID
from zoneinfo import available_timezones

from babel.dates import format_datetime
from fastapi import APIRouter, Request, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from agent.assistants import service
from agent.assistants.models import AssistantFields, AssistantUpdate, Autonomy
from agent.llm import ModelUnavailable
from agent.threads.lifecycle import Status
from runtime.preview import SAMPLE_RECIPIENT, Step, first_email, sequence
from server import charts, csrf, i18n
from server.deps import PageUserDep, ServicesDep
from server.i18n import gettext as _
from server.pages.common import N_, PageRoute, back, field_errors, flash, form_text, partial, render

router = APIRouter(prefix="/assistants", route_class=PageRoute, include_in_schema=False)

LABELS = {
    "name": N_("Assistant name"), "sender_name": N_("Sender name"), "role": N_("Sender's role"),
    "company": N_("Company"), "offer": N_("Your offer"), "value_proposition": N_("Why it matters to them"),
    "target_audience": N_("Who you write to"), "goal": N_("Goal"), "call_to_action": N_("Call to action"),
    "tone": N_("Tone"), "language": N_("Language"), "signature": N_("Signature"),
    "knowledge": N_("Facts and answers"), "forbidden": N_("Never say"), "autonomy": N_("What needs your approval"),
    "follow_up_count": N_("Follow-ups"), "follow_up_days": N_("Days between follow-ups"),
    "max_replies": N_("Replies before handing over"), "send_days": N_("Sending days"),
    "send_start": N_("Send from"), "send_end": N_("Send until"), "timezone": N_("Time zone"),
    "stop_company_on_decline": N_("Stop the whole company on a decline"),
}
# The model's own descriptions are the help texts; Babel extracts them from agent/assistants/models.py.
WEEKDAYS = (N_("Mon"), N_("Tue"), N_("Wed"), N_("Thu"), N_("Fri"), N_("Sat"), N_("Sun"))
AUTONOMY = {
    Autonomy.approve_first: N_("Ask me before the first email; replies and follow-ups go out on their own"),
    Autonomy.approve_all: N_("Ask me before every email"),
    Autonomy.autonomous: N_("Send everything on its own"),
}
GROUPS = (
    (N_("Who is writing"), ("name", "sender_name", "role", "company", "signature")),
    (N_("What you offer"), ("offer", "value_proposition", "target_audience", "goal", "call_to_action")),
    (N_("What it knows"), ("knowledge", "forbidden")),
    (N_("How it writes"), ("tone", "language")),
    (N_("How much it does alone"), ("autonomy", "follow_up_count", "follow_up_days", "max_replies",
                                      "stop_company_on_decline")),
    (N_("When it sends"), ("send_days", "send_start", "send_end", "timezone")),
)
KINDS = {"autonomy": "select", "send_days": "days", "send_start": "time", "send_end": "time",
         "timezone": "timezone", "stop_company_on_decline": "bool"}
LONG = {"offer", "value_proposition", "target_audience", "goal", "call_to_action", "signature", "knowledge",
        "forbidden"}
NUMBERS = {"follow_up_count": (0, 10), "follow_up_days": (1, 90), "max_replies": (0, 50)}


def form_fields() -> list[dict[str, Any]]:
    """Every persona field with its label, help text, kind and limits, in display groups (new fields included)."""
    listed = [n for _t, names in GROUPS for n in names]
    extra = tuple(n for n in AssistantFields.model_fields if n not in listed)
    groups = []
    for title, names in (*GROUPS, (N_("More"), extra)):
        fields = []
        for name in names:
            info = AssistantFields.model_fields[name]
            kind = "number" if name in NUMBERS else KINDS.get(name) or ("long" if name in LONG else "text")
            label = _(LABELS[name]) if name in LABELS else name.replace("_", " ").capitalize()
            fields.append({"name": name, "label": label, "help": _(info.description or ""), "kind": kind,
                           "required": info.is_required(), "range": NUMBERS.get(name)})
        if fields:
            groups.append({"title": _(title), "fields": fields})
    return groups


def _shown(name: str, value: Any) -> Any:
    if isinstance(value, Autonomy):
        return value.value
    if isinstance(value, time_of_day):
        return value.strftime("%H:%M")
    if name in ("send_start", "send_end") and isinstance(value, str):
        return value[:5]
    return value


def defaults() -> dict[str, Any]:
    """A new persona's starting values: the model's defaults."""
    return {name: _shown(name, info.default) for name, info in AssistantFields.model_fields.items()
            if not info.is_required()}


def stored(assistant: Any) -> dict[str, Any]:
    """A stored persona's values as the form shows them."""
    return {k: _shown(k, v) for k, v in assistant.model_dump(mode="json").items()}


def parse(form: FormData) -> tuple[dict[str, Any], AssistantFields | None, dict[str, str]]:
    """The submitted values, the validated persona (or None) and errors by field."""
    values: dict[str, Any] = {}
    for name in AssistantFields.model_fields:
        kind = KINDS.get(name)
        if kind == "days":
            values[name] = [d for d in form.getlist(name) if isinstance(d, str) and d.isdigit()]
        elif kind == "bool":
            values[name] = name in form
        else:
            values[name] = form_text(form, name)
    try:
        return values, AssistantFields.model_validate(values), {}
    except ValidationError as exc:
        errors = field_errors(exc)
        if "form" in errors:  # the model's own check across fields: the sending window
            errors.pop("form")
            errors.setdefault("send_end", _("The window must end after it starts."))
        if "send_days" in errors and not values["send_days"]:
            errors["send_days"] = _("Choose at least one day.")
        return values, None, errors


def _autonomy_options() -> list[tuple[str, str]]:
    return [(a.value, _(label)) for a, label in AUTONOMY.items()]


async def _form(request: Request, *, values: dict[str, Any], errors: dict[str, str], assistant: Any = None,
                status_code: int = 200, **extra: Any) -> Response:
    sample = extra.pop("sample", SAMPLE_RECIPIENT)
    return await render(request, "assistant_form.html", status_code=status_code, values=values, errors=errors,
                        groups=form_fields(), assistant=assistant, autonomy_options=_autonomy_options(),
                        sample=sample, weekdays=[(i + 1, _(d)) for i, d in enumerate(WEEKDAYS)],
                        zones=sorted(available_timezones()), **extra)


@router.get("")
async def index(request: Request, svc: ServicesDep, uid: PageUserDep, archived: bool = False) -> Response:
    """The user's assistants."""
    async with svc.pool.connection() as conn:
        items = await service.list_for_user(conn, user_id=uid, include_archived=True)
        cur = await conn.execute("SELECT assistant_id, count(*) FILTER (WHERE status <> %s) AS open,"
                                 " count(*) AS total FROM threads WHERE user_id = %s GROUP BY assistant_id",
                                 (Status.closed.value, uid))
        counts = {r["assistant_id"]: r for r in await cur.fetchall()}
    shown = [a for a in items if archived or a.archived_at is None]
    return await render(request, "assistants.html", assistants=shown, counts=counts, archived=archived,
                        archived_count=sum(1 for a in items if a.archived_at is not None),
                        autonomy=dict(_autonomy_options()))


@router.get("/new")
async def new(request: Request, uid: PageUserDep) -> Response:
    """An empty persona form with sensible defaults."""
    return await _form(request, values=defaults(), errors={})


@router.post("/new")
async def create(request: Request, svc: ServicesDep, uid: PageUserDep) -> Response:
    """Create the persona, or show the form again with the errors next to the fields."""
    values, fields, errors = parse(await csrf.checked_form(request))
    if fields is None:
        return await _form(request, values=values, errors=errors, status_code=422)
    async with svc.pool.connection() as conn:
        created = await service.create(conn, user_id=uid, fields=fields)
    flash(request, _("Assistant “%(name)s” created. Start outreach with it now.", name=created.name))
    return back(f"/threads/new?assistant={created.id}")


@router.get("/{assistant_id}")
async def edit(request: Request, assistant_id: UUID, svc: ServicesDep, uid: PageUserDep, days: int = 7) -> Response:
    """The persona's form, with its activity chart."""
    async with svc.pool.connection() as conn:
        assistant = await service.get(conn, user_id=uid, assistant_id=assistant_id)
        activity = await charts.activity(conn, user_id=uid, days=days, path=f"/assistants/{assistant_id}",
                                         assistant_id=assistant_id)
    return await _form(request, values=stored(assistant), errors={}, assistant=assistant, activity=activity)


@router.post("/{assistant_id}")
async def update(request: Request, assistant_id: UUID, svc: ServicesDep, uid: PageUserDep) -> Response:
    """Save the persona's changes."""
    values, fields, errors = parse(await csrf.checked_form(request))
    async with svc.pool.connection() as conn:
        assistant = await service.get(conn, user_id=uid, assistant_id=assistant_id)
        if fields is None:
            return await _form(request, values=values, errors=errors, assistant=assistant, status_code=422)
        await service.update(conn, user_id=uid, assistant_id=assistant_id,
                             changes=AssistantUpdate(**fields.model_dump()))
    flash(request, _("Changes saved."))
    return back("/assistants")


@router.post("/{assistant_id}/archive")
async def archive(request: Request, assistant_id: UUID, svc: ServicesDep, uid: PageUserDep) -> Response:
    """Archive: it starts no new threads; its threads go on."""
    await csrf.checked_form(request)
    async with svc.pool.connection() as conn:
        assistant = await service.archive(conn, user_id=uid, assistant_id=assistant_id)
    flash(request, _("“%(name)s” archived. Its open threads go on.", name=assistant.name))
    return back("/assistants")


@router.post("/preview/draft")
async def preview(request: Request, svc: ServicesDep, uid: PageUserDep) -> Response:
    """Draft a sample first email from the form as it is now; nothing is stored or sent."""
    form = await csrf.checked_form(request)
    values, fields, errors = parse(form)
    recipient = {k: form_text(form, f"sample_{k}").strip()[:500] for k in ("name", "company", "context")}
    if fields is None:
        return partial(request, "partials/preview.html", errors=errors, labels={k: _(v) for k, v in LABELS.items()})
    try:
        result = await first_email(svc.llm, fields, recipient)
    except ModelUnavailable as exc:
        return partial(request, "partials/preview.html", unavailable=str(exc))
    return partial(request, "partials/preview.html", preview=result, recipient={**SAMPLE_RECIPIENT, **recipient})


def _shown_step(step: Step) -> dict[str, Any]:
    """A sequence step with its send time in words, in the persona's time zone."""
    when = format_datetime(step.at, "EEEE d MMMM y, HH:mm", tzinfo=step.at.tzinfo, locale=i18n.current())
    return {"number": step.number, "day": step.day, "subject": step.subject, "text": step.text,
            "when": f"{when} ({step.at.tzinfo})", "iso": step.at.isoformat()}


@router.post("/preview/sequence")
async def preview_sequence(request: Request, svc: ServicesDep, uid: PageUserDep, assistant: str = "") -> Response:
    """The first email and every follow-up, each on the day it would go; nothing is stored or sent.

    htmx swaps in the sequence; without JavaScript the form comes back with the sequence beside it."""
    form = await csrf.checked_form(request)
    values, fields, errors = parse(form)
    recipient = {k: form_text(form, f"sample_{k}").strip()[:500] for k in ("name", "company", "context")}
    context: dict[str, Any] = {}
    if fields is None:
        context["errors"] = errors
    else:
        try:
            steps = await sequence(svc.llm, fields, recipient, now=datetime.now(UTC))
            context["steps"] = [_shown_step(s) for s in steps]
        except ModelUnavailable as exc:
            context["unavailable"] = str(exc)
    if request.headers.get("hx-request"):
        return partial(request, "partials/sequence_preview.html", labels={k: _(v) for k, v in LABELS.items()},
                       **context)
    row = None
    if assistant:
        try:
            async with svc.pool.connection() as conn:
                row = await service.get(conn, user_id=uid, assistant_id=UUID(assistant))
        except ValueError:
            row = None
    return await _form(request, values=values, errors=errors, assistant=row, status_code=422 if errors else 200,
                       sample={**SAMPLE_RECIPIENT, **recipient}, sequence=context)
