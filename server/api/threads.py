"""Threads: start one or many, list, read, and act on them."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile, status
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from agent.campaigns import service as campaigns
from agent.campaigns.models import CampaignName
from agent.errors import Conflict, InvalidInput
from agent.events import service as events
from agent.text import Line, Text
from agent.threads import bulk, export, messages, service
from agent.threads.models import Status, Thread, ThreadCreate, ThreadDetail, ThreadPage
from agent.threads.service import ThreadFilter
from runtime.start import start_thread as _start
from server import bulk as bulk_actions
from server.actions import ACTIONS, Action
from server.deps import ConnDep, ServicesDep, UserIdDep

router = APIRouter(prefix="/api/threads", tags=["threads"])


class Accepted(BaseModel):
    """An action was queued; the thread changes when the worker runs it."""

    status: Literal["queued", "done"]
    thread_id: UUID


class BulkRecipient(BaseModel):
    """One recipient of a bulk start."""

    model_config = ConfigDict(extra="allow")
    email: Line = Field(max_length=254)
    name: Line = ""
    company: Line = ""
    context: Text = ""


class BulkCreate(BaseModel):
    """Start many threads with one persona."""

    model_config = ConfigDict(extra="forbid")
    assistant_id: UUID
    recipients: list[BulkRecipient] = Field(min_length=1, max_length=bulk.MAX_ROWS)
    campaign_name: CampaignName | None = Field(None, description="The campaign's name (default: persona and date).")


class BulkResult(BaseModel):
    """What a bulk start did, row by row."""

    created: list[UUID]
    skipped: list[dict[str, Any]]
    campaign_id: UUID | None = Field(None, description="The campaign the threads belong to (None: none started).")


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_thread(body: ThreadCreate, svc: ServicesDep, conn: ConnDep, user_id: UserIdDep) -> Thread:
    """Start outreach to one recipient; the assistant writes the first email."""
    return Thread.model_validate(await _start(svc, conn, user_id, body))


async def _bulk(svc: ServicesDep, conn: Any, user_id: UUID, assistant_id: UUID, rows: list[dict[str, Any]],
                campaign_name: str | None = None, filename: str | None = None) -> BulkResult:
    valid, errors = bulk.to_thread_creates(assistant_id, rows)
    if errors:
        raise InvalidInput(f"{len(errors)} row(s) are invalid; nothing was created: " +
                           "; ".join(f"row {e['row']}: {e['error']}" for e in errors[:20]))
    campaign = await bulk.open_campaign(conn, user_id=user_id, assistant_id=assistant_id, name=campaign_name,
                                        filename=filename, today=datetime.now(UTC).date())
    created: list[UUID] = []
    skipped: list[dict[str, Any]] = []
    for number, data in valid:
        try:
            created.append((await _start(svc, conn, user_id, data, campaign_id=campaign.id)).id)
        except Conflict as exc:
            skipped.append({"row": number, "email": str(data.recipient_email), "reason": bulk.skip_reason(exc)})
    kept = created or not await campaigns.discard_if_empty(conn, user_id=user_id, campaign_id=campaign.id)
    return BulkResult(created=created, skipped=skipped, campaign_id=campaign.id if kept else None)


@router.post("/bulk", status_code=status.HTTP_201_CREATED)
async def create_threads_bulk(body: BulkCreate, svc: ServicesDep, conn: ConnDep, user_id: UserIdDep) -> BulkResult:
    """Start many threads as one campaign; invalid rows stop it all, duplicates and suppressed addresses are skipped."""
    return await _bulk(svc, conn, user_id, body.assistant_id, [r.model_dump() for r in body.recipients],
                       body.campaign_name)


@router.post("/bulk/csv", status_code=status.HTTP_201_CREATED)
async def create_threads_csv(
    svc: ServicesDep, conn: ConnDep, user_id: UserIdDep, assistant_id: Annotated[UUID, Form()],
    file: Annotated[UploadFile, File(description="CSV with an email column; name, company, context optional")],
    campaign_name: Annotated[CampaignName | None, Form(description="The campaign's name (default: the file's).")] = None,
) -> BulkResult:
    """Start many threads from a CSV upload, as one campaign."""
    data = await file.read(5_000_001)
    if len(data) > 5_000_000:
        raise InvalidInput("The CSV file is larger than 5 MB.")
    return await _bulk(svc, conn, user_id, assistant_id, bulk.rows_from_csv(data), campaign_name, file.filename)


def thread_filter(
    status_: Annotated[Status | None, Query(alias="status")] = None,
    q: Annotated[Line | None, Query(max_length=200, description=(
        "The recipient's name or address, or words in the subjects and bodies of the thread's emails "
        "(full-text, English and Russian word forms)"))] = None,
    assistant_id: UUID | None = None,
    campaign_id: UUID | None = None,
) -> ThreadFilter:
    """The list's filters, shared by the list, the export and bulk actions."""
    return ThreadFilter(status=status_, search=q or None, assistant_id=assistant_id, campaign_id=campaign_id)


FilterDep = Annotated[ThreadFilter, Depends(thread_filter)]


@router.get("")
async def list_threads(
    conn: ConnDep, user_id: UserIdDep, where: FilterDep, limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[Line | None, Query(max_length=200)] = None,
) -> ThreadPage:
    """Threads, newest first, filtered by status, persona, or a search of recipients and mail; follow next_cursor."""
    rows, next_cursor = await service.list_page(conn, user_id=user_id, status=where.status, search=where.search,
                                                assistant_id=where.assistant_id, limit=limit, cursor=cursor,
                                                campaign_id=where.campaign_id)
    return ThreadPage(items=[Thread.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get("/export.csv", response_class=StreamingResponse, responses={200: {"content": {"text/csv": {}}}})
async def export_csv(svc: ServicesDep, user_id: UserIdDep, where: FilterDep) -> StreamingResponse:
    """The threads the filters match as CSV (the list's filters), streamed; cells never start a formula."""

    async def chunks() -> AsyncIterator[str]:
        async with svc.pool.connection() as conn:
            async for chunk in export.csv_chunks(conn, user_id=user_id, where=where):
                yield chunk

    name = f"threads-{datetime.now(UTC):%Y%m%d-%H%M}.csv"
    return StreamingResponse(chunks(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


class BulkFilter(BaseModel):
    """The thread list's filters, for a bulk action on everything they match."""

    model_config = ConfigDict(extra="forbid")
    status: Status | None = None
    q: Annotated[Line, StringConstraints(max_length=200)] | None = None
    assistant_id: UUID | None = None
    campaign_id: UUID | None = None


class BulkAction(BaseModel):
    """One action on many threads: name them (ids) or give the list's filters (filter), not both."""

    model_config = ConfigDict(extra="forbid")
    action: Literal[bulk_actions.BULK_ACTIONS]  # type: ignore[valid-type]
    ids: list[UUID] | None = Field(None, min_length=1, max_length=bulk_actions.MAX_THREADS)
    filter: BulkFilter | None = None

    @model_validator(mode="after")
    def _one_target(self) -> BulkAction:
        if (self.ids is None) == (self.filter is None):
            raise ValueError("give either ids or filter")
        return self


class BulkOutcome(BaseModel):
    """What the action did to one thread."""

    thread_id: UUID
    recipient_email: str
    outcome: Literal["done", "skipped"]
    reason: str | None = None


class BulkReport(BaseModel):
    """Per-thread outcomes of a bulk action."""

    action: str
    done: int
    skipped: int
    outcomes: list[BulkOutcome]


@router.post("/actions")
async def bulk_action(body: BulkAction, svc: ServicesDep, user_id: UserIdDep) -> BulkReport:
    """Pause, resume, stop or take over many threads (at most 10,000), each through its own action."""
    where = None if body.filter is None else ThreadFilter(
        status=body.filter.status, search=body.filter.q or None, assistant_id=body.filter.assistant_id,
        campaign_id=body.filter.campaign_id)
    ids = await bulk_actions.resolve(svc, user_id=user_id, ids=body.ids, where=where)
    outcomes = await bulk_actions.run(svc, user_id=user_id, action=body.action, thread_ids=ids)
    done = sum(1 for o in outcomes if o.outcome == "done")
    return BulkReport(action=body.action, done=done, skipped=len(outcomes) - done,
                      outcomes=[BulkOutcome(thread_id=o.thread_id, recipient_email=o.recipient_email,
                                            outcome=o.outcome, reason=o.reason) for o in outcomes])


@router.get("/{thread_id}")
async def get_thread(thread_id: UUID, conn: ConnDep, user_id: UserIdDep) -> ThreadDetail:
    """A thread with its emails, the draft waiting for approval and every decision."""
    row = await service.get(conn, user_id=user_id, thread_id=thread_id)
    msgs = await messages.list_for_thread(conn, user_id=user_id, thread_id=thread_id)
    evs = await events.list_for_thread(conn, user_id=user_id, thread_id=thread_id)
    return ThreadDetail.model_validate({**row.as_dict(), "messages": msgs, "events": evs})


@router.get("/{thread_id}/history.json")
async def thread_history(thread_id: UUID, conn: ConnDep, user_id: UserIdDep) -> JSONResponse:
    """The thread's whole history as a JSON download: the thread, its emails, events and decisions."""
    data = await export.history(conn, user_id=user_id, thread_id=thread_id)
    return JSONResponse(jsonable_encoder(data), headers={
        "Content-Disposition": f'attachment; filename="thread-{thread_id}.json"'})


def _accepted(thread_id: UUID, done: bool = False) -> Accepted:
    return Accepted(status="done" if done else "queued", thread_id=thread_id)


def _action_route(action: Action) -> None:
    """POST /api/threads/{id}/<action>, its body model from the shared action table."""

    async def endpoint(thread_id: UUID, svc: ServicesDep, user_id: UserIdDep, body: Any = None) -> Accepted:
        await action.run(svc, user_id=user_id, thread_id=thread_id, body=body)
        return _accepted(thread_id, action.done)

    params = [inspect.Parameter("thread_id", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=UUID),
              inspect.Parameter("svc", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=ServicesDep),
              inspect.Parameter("user_id", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=UserIdDep)]
    if action.body is not None:
        required = action.body_required
        params.append(inspect.Parameter("body", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                        annotation=action.body if required else action.body | None,
                                        default=inspect.Parameter.empty if required else None))
    endpoint.__signature__ = inspect.Signature(params, return_annotation=Accepted)  # type: ignore[attr-defined]
    endpoint.__name__ = endpoint.__qualname__ = action.endpoint
    endpoint.__doc__ = action.doc
    router.add_api_route(f"/{{thread_id}}/{action.name}", endpoint, methods=["POST"], status_code=202,
                         name=action.endpoint, response_model=Accepted)


for _action in ACTIONS.values():
    _action_route(_action)
