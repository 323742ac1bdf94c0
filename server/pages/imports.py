"""Starting many threads from a CSV or .xlsx file: upload, map columns, check every row, then start with progress."""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request, Response
from starlette.datastructures import FormData, UploadFile

from agent.assistants import service as assistants
from agent.campaigns import service as campaigns
from agent.errors import AppError, Conflict, InvalidInput, NotFound
from agent.imports.deliverability import Reason
from agent.imports.tabular import Table, read_table
from agent.threads import bulk
from agent.threads.models import ThreadCreate
from runtime.services import Services
from runtime.start import start_thread
from server import csrf
from server.deps import PageUserDep, ServicesDep
from server.i18n import gettext as _
from server.pages.common import PageRoute, back, flash, form_text, partial, render

router = APIRouter(prefix="/threads/import", route_class=PageRoute, include_in_schema=False)
MAX_BYTES = 5_000_000
PREVIEW_ROWS = 20
KEEP_SECONDS = 3600


@dataclass
class ImportJob:
    """One running or finished import, kept in this process for its progress page."""

    id: str
    user_id: UUID
    total: int
    started_at: float = field(default_factory=time.monotonic)
    created: int = 0
    done: int = 0
    skipped: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    finished: bool = False
    campaign_id: UUID | None = None
    campaign_name: str = ""
    task: asyncio.Task[None] | None = None


def _jobs(request: Request) -> dict[str, ImportJob]:
    jobs: dict[str, ImportJob] | None = getattr(request.app.state, "imports", None)
    if jobs is None:
        jobs = request.app.state.imports = {}
    for key in [k for k, j in jobs.items() if j.finished and time.monotonic() - j.started_at > KEEP_SECONDS]:
        del jobs[key]
    return jobs


async def _personas(svc: Services, uid: UUID) -> list[Any]:
    async with svc.pool.connection() as conn:
        return await assistants.list_for_user(conn, user_id=uid)


@router.get("")
async def upload_form(request: Request, svc: ServicesDep, uid: PageUserDep, assistant: str = "") -> Response:
    """Choose the assistant and the CSV file."""
    return await render(request, "import_upload.html", personas=await _personas(svc, uid),
                        values={"assistant_id": assistant}, errors={})


def _source(table: Table) -> dict[str, str]:
    """How the upload was read, for the page to say so (kept in hidden fields across re-checks)."""
    return {"kind": table.kind, "encoding": table.encoding_label if table.kind == "csv" else "",
            "delimiter": table.delimiter_name if table.kind == "csv" else "", "nul": "1" if table.nul_removed else ""}


async def _carried(form: FormData) -> tuple[Table, dict[str, str]]:
    """The table carried by the preview form (re-encoded as UTF-8 CSV) and how the original upload was read."""
    data = str(form.get("csv_text", "")).encode("utf-8")
    table = await asyncio.to_thread(read_table, data, filename="import.csv", max_rows=bulk.MAX_ROWS)
    source = {k: str(form.get(f"source_{k}", "")) for k in ("kind", "encoding", "delimiter", "nul")}
    return table, source if source["kind"] else _source(table)


def _dns_reason(reason: Reason | None) -> str:
    """Why an address's domain cannot receive mail, in plain words."""
    return {Reason.NO_DOMAIN: _("The domain does not exist."),
            Reason.NULL_MX: _("The domain says it accepts no email (null MX)."),
            Reason.NO_MAIL_HOST: _("The domain has no mail server (no MX or address record)."),
            Reason.SENDS_NO_MAIL: _("The domain has no mail server and says it sends no email.")}.get(
        reason or Reason.DNS_FAILED, _("The domain cannot receive email."))


async def _check(svc: Services, uid: UUID, form: FormData, table: Table, source: dict[str, str]) -> dict[str, Any]:
    """Parse with the chosen mapping, validate every row and find the ones that will be skipped."""
    headers = table.header
    guessed = bulk.guess_mapping(headers)
    mapping = {f: str(form.get(f"map_{f}", guessed[f])) for f in bulk.MAPPED_FIELDS}
    if "map_email" not in form:
        mapping = guessed
    try:
        assistant_id = UUID(str(form.get("assistant_id")))
    except ValueError as exc:
        raise InvalidInput(_("Choose an assistant.")) from exc
    rows = bulk.rows_with_mapping(table, mapping)
    valid, invalid = bulk.to_thread_creates(assistant_id, rows)
    async with svc.pool.connection() as conn:
        persona = await assistants.get(conn, user_id=uid, assistant_id=assistant_id)
        ready, skipped = await bulk.screen(conn, user_id=uid, valid=valid)
    invalid = [{**e, "error": _friendly(e["error"])} for e in invalid]
    ready, refused, unchecked = await bulk.check_domains(ready, settings=svc.settings)
    invalid += [{**r, "error": _dns_reason(r["reason"])} for r in refused]
    problems = {e["row"]: e for e in invalid} | {s["row"]: s for s in skipped}
    return {"headers": headers, "mapping": mapping, "rows": rows[:PREVIEW_ROWS], "total": len(rows),
            "invalid": invalid, "skipped": skipped, "ready": ready, "problems": problems, "persona": persona,
            "unchecked": unchecked, "source": source, "csv_text": table.to_csv(), "fields": list(bulk.MAPPED_FIELDS)}


def _friendly(error: str) -> str:
    """A row's validation error in plain words ("field: message" from the bulk parser)."""
    field, _sep, message = error.partition(":")
    if field == "recipient_email":
        return _("The email address is missing or not valid.")
    labels = {"recipient_name": _("Name"), "recipient_company": _("Company"), "context": _("Context"),
              "recipient_timezone": _("Time zone")}
    return f"{labels.get(field, field)}: {message.strip()}"


async def _upload_error(request: Request, svc: Services, uid: UUID, form: FormData,
                        errors: dict[str, str]) -> Response:
    return await render(request, "import_upload.html", status_code=422, personas=await _personas(svc, uid),
                        values={"assistant_id": str(form.get("assistant_id", ""))}, errors=errors)


@router.post("")
async def preview(request: Request, svc: ServicesDep, uid: PageUserDep) -> Response:
    """Read the upload and show the column mapping and every row's check; nothing is created yet."""
    form = await csrf.checked_form(request)
    upload = form.get("file")
    errors: dict[str, str] = {}
    try:
        UUID(str(form.get("assistant_id", "")))
    except ValueError:
        errors["assistant_id"] = _("Choose an assistant.")
    if not isinstance(upload, UploadFile) or not upload.filename:
        errors["file"] = _("Choose a CSV or Excel (.xlsx) file.")
        return await _upload_error(request, svc, uid, form, errors)
    data = await upload.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        errors["file"] = _("The file is larger than 5 MB. Split it into smaller files.")
    if errors:
        return await _upload_error(request, svc, uid, form, errors)
    try:
        table = await asyncio.to_thread(read_table, data, filename=upload.filename, max_rows=bulk.MAX_ROWS)
        checked = await _check(svc, uid, form, table, _source(table))
    except InvalidInput as exc:
        return await _upload_error(request, svc, uid, form, {"file": exc.message})
    name = bulk.campaign_name(name=None, filename=upload.filename, persona=checked["persona"].name,
                              today=datetime.now(UTC).date())
    return await render(request, "import_preview.html", campaign_name=name, **checked)


@router.post("/check")
async def recheck(request: Request, svc: ServicesDep, uid: PageUserDep) -> Response:
    """The row checks again after the column mapping changed (an htmx fragment, or the whole page)."""
    form = await csrf.checked_form(request)
    checked = await _check(svc, uid, form, *await _carried(form))
    if request.headers.get("hx-request"):
        return partial(request, "partials/import_check.html", **checked)
    return await render(request, "import_preview.html", campaign_name=form_text(form, "campaign_name", 200), **checked)


async def _run(svc: Services, job: ImportJob, ready: list[tuple[int, ThreadCreate]]) -> None:
    """Start the threads one by one, in the job's campaign; rows refused at this point are reported as skipped."""
    try:
        async with svc.pool.connection() as conn:
            for number, data in ready:
                try:
                    await start_thread(svc, conn, job.user_id, data, campaign_id=job.campaign_id)
                    job.created += 1
                except Conflict as exc:
                    job.skipped.append({"row": number, "email": str(data.recipient_email), "kind": "conflict",
                                        "reason": exc.message})
                job.done += 1
            if not job.created and job.campaign_id is not None:
                await campaigns.discard_if_empty(conn, user_id=job.user_id, campaign_id=job.campaign_id)
                job.campaign_id = None
    except AppError as exc:
        job.error = exc.message
    finally:
        job.finished = True


@router.post("/start")
async def start(request: Request, svc: ServicesDep, uid: PageUserDep) -> Response:
    """Start the rows that passed the checks, in the background; the page shows the progress."""
    form = await csrf.checked_form(request)
    checked = await _check(svc, uid, form, *await _carried(form))
    if not checked["ready"]:
        flash(request, _("No row can be started: fix the file and upload it again."), "bad")
        return back("/threads/import")
    source = "xlsx" if checked["source"].get("kind") == "xlsx" else "csv"
    async with svc.pool.connection() as conn:  # committed before the threads start in the background
        campaign = await bulk.open_campaign(conn, user_id=uid, assistant_id=checked["persona"].id, filename=None,
                                            name=form_text(form, "campaign_name", 200), source=source,
                                            today=datetime.now(UTC).date())
    job = ImportJob(id=secrets.token_urlsafe(12), user_id=uid, total=len(checked["ready"]), campaign_id=campaign.id,
                    campaign_name=campaign.name)
    job.skipped = list(checked["skipped"])
    _jobs(request)[job.id] = job
    job.task = asyncio.create_task(_run(svc, job, checked["ready"]))
    return await render(request, "import_progress.html", job=job, invalid=checked["invalid"],
                        persona=checked["persona"])


@router.get("/{job_id}")
async def progress(request: Request, job_id: str, uid: PageUserDep) -> Response:
    """The progress of an import (an htmx fragment polled every second)."""
    job = _jobs(request).get(job_id)
    if job is None or job.user_id != uid:
        raise NotFound(_("This import is over or ran on another server; its threads are in the thread list."))
    return partial(request, "partials/import_status.html", job=job)
