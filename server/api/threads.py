"""Threads: start one or many, list, read, and act on them."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, File, Form, Query, UploadFile, status
from pydantic import BaseModel, ConfigDict, Field

from agent.campaigns import service as campaigns
from agent.campaigns.models import CampaignName
from agent.errors import Conflict, InvalidInput
from agent.events import service as events
from agent.text import Line, Text
from agent.threads import bulk, messages, service
from agent.threads.models import Status, Thread, ThreadCreate, ThreadDetail, ThreadPage
from runtime.start import start_thread as _start
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


@router.get("")
async def list_threads(
    conn: ConnDep, user_id: UserIdDep, status_: Annotated[Status | None, Query(alias="status")] = None,
    q: Annotated[Line | None, Query(max_length=200)] = None, assistant_id: UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50, cursor: Annotated[Line | None, Query(max_length=200)] = None,
) -> ThreadPage:
    """Threads, newest first, filtered by status, recipient or persona; follow next_cursor for more."""
    rows, next_cursor = await service.list_page(conn, user_id=user_id, status=status_, search=q,
                                                assistant_id=assistant_id, limit=limit, cursor=cursor)
    return ThreadPage(items=[Thread.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get("/{thread_id}")
async def get_thread(thread_id: UUID, conn: ConnDep, user_id: UserIdDep) -> ThreadDetail:
    """A thread with its emails, the draft waiting for approval and every decision."""
    row = await service.get(conn, user_id=user_id, thread_id=thread_id)
    msgs = await messages.list_for_thread(conn, user_id=user_id, thread_id=thread_id)
    evs = await events.list_for_thread(conn, user_id=user_id, thread_id=thread_id)
    return ThreadDetail.model_validate({**row.as_dict(), "messages": msgs, "events": evs})


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
