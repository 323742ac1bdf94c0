"""The suppression list: addresses that are never emailed again."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, File, Form, Path, Response, UploadFile, status
from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from agent.errors import InvalidInput, NotFound
from agent.suppressions import service
from agent.text import Line, SingleLine
from server.deps import ConnDep, ServicesDep, UserIdDep

router = APIRouter(prefix="/api/suppressions", tags=["suppressions"])
MAX_CSV_BYTES = 5_000_000
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), SingleLine]


class Suppression(BaseModel):
    """An address that is never emailed again, and why."""

    email: str
    reason: str
    source_thread_id: UUID | None
    created_at: datetime


class SuppressionCreate(BaseModel):
    """Suppress one address by hand."""

    model_config = ConfigDict(extra="forbid")

    email: EmailStr = Field(max_length=254)
    reason: Reason = "added by hand"


class SuppressionAdded(BaseModel):
    """What adding an address did."""

    email: str
    created: bool = Field(description="False when the address was already suppressed (its first reason is kept).")
    closed_thread_ids: list[UUID] = Field(description="Open threads to the address, now closed as 'suppressed'.")


class ImportResult(BaseModel):
    """What an import did, row by row (row numbers count the header as row 1)."""

    added: int
    already_suppressed: int
    errors: list[dict[str, str | int]]
    closed_thread_ids: list[UUID]


SUMMARY = "You suppressed {email}; nothing more is sent to it."


@router.get("")
async def list_suppressions(conn: ConnDep, user_id: UserIdDep) -> list[Suppression]:
    """Your suppressed addresses, newest first."""
    return [Suppression.model_validate(r) for r in await service.list_for_user(conn, user_id=user_id)]


@router.post("", status_code=status.HTTP_201_CREATED)
async def add_suppression(body: SuppressionCreate, response: Response, svc: ServicesDep,
                          user_id: UserIdDep) -> SuppressionAdded:
    """Never email this address again; open threads to it close as 'suppressed'."""
    email = str(body.email).lower()
    async with svc.pool.connection() as conn:  # committed before the answer, so a client reads what it did
        added, closed = await service.suppress_many(conn, user_id=user_id, emails=[email], reason=body.reason,
                                                    close_reason="suppressed", actor="user", summary=SUMMARY)
    if not added:
        response.status_code = status.HTTP_200_OK
    return SuppressionAdded(email=email, created=bool(added), closed_thread_ids=closed)


@router.delete("/{email}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_suppression(email: Annotated[Line, Path(max_length=254)], svc: ServicesDep,
                             user_id: UserIdDep) -> Response:
    """Allow emailing the address again (closed threads stay closed)."""
    async with svc.pool.connection() as conn:
        removed = await service.remove(conn, user_id=user_id, email=email)
    if not removed:
        raise NotFound(f"{email.strip().lower()} is not on your suppression list.")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/import")
async def import_suppressions(
    svc: ServicesDep, user_id: UserIdDep, file: Annotated[UploadFile, File(description="CSV with an email column")],
    reason: Annotated[Line, Form(max_length=200)] = "imported",
) -> ImportResult:
    """Suppress every address of a CSV file; rows that are not email addresses are reported, the rest are added."""
    data = await file.read(MAX_CSV_BYTES + 1)
    if len(data) > MAX_CSV_BYTES:
        raise InvalidInput("The CSV file is larger than 5 MB.")
    valid: list[str] = []
    errors: list[dict[str, str | int]] = []
    for number, value in service.emails_from_csv(data):
        try:
            valid.append(service.normalize_email(value))
        except InvalidInput as exc:
            errors.append({"row": number, "value": value[:254], "error": exc.message})
    async with svc.pool.connection() as conn:
        added, closed = await service.suppress_many(conn, user_id=user_id, emails=valid,
                                                    reason=reason.strip() or "imported", close_reason="suppressed",
                                                    actor="user", summary=SUMMARY)
    return ImportResult(added=len(added), already_suppressed=len(set(valid)) - len(added), errors=errors,
                        closed_thread_ids=closed)
