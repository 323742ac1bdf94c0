"""The JSON API of a persona's kept rewrites: list and delete."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from fastapi import APIRouter, status
from pydantic import BaseModel

from agent.assistants import service as assistants
from agent.edits import service as edits
from server.deps import ConnDep, UserIdDep

router = APIRouter(prefix="/api/assistants", tags=["assistants"])


class DraftEdit(BaseModel):
    """What the user changed in one draft: their edited text ('edit') or their feedback ('feedback')."""

    id: int
    thread_id: UUID | None
    kind: str
    draft_kind: str
    original: str
    revised: str
    created_at: datetime


@router.get("/{assistant_id}/edits")
async def list_edits(assistant_id: UUID, conn: ConnDep, user_id: UserIdDep) -> list[DraftEdit]:
    """The persona's kept rewrites, newest first; the latest few are examples in its drafting prompts."""
    await assistants.get(conn, user_id=user_id, assistant_id=assistant_id)
    rows = await edits.list_for_assistant(conn, user_id=user_id, assistant_id=assistant_id)
    return [DraftEdit(**row) for row in rows]


@router.delete("/{assistant_id}/edits/{edit_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_edit(assistant_id: UUID, edit_id: int, conn: ConnDep, user_id: UserIdDep) -> None:
    """Forget one rewrite."""
    await edits.delete(conn, user_id=user_id, assistant_id=assistant_id, edit_id=edit_id)
