"""Assistant personas: create, list, read, edit, archive."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, status

from agent.assistants import service
from agent.assistants.models import Assistant, AssistantFields, AssistantUpdate
from server.deps import ConnDep, UserIdDep

router = APIRouter(prefix="/api/assistants", tags=["assistants"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_assistant(body: AssistantFields, conn: ConnDep, user_id: UserIdDep) -> Assistant:
    """Create a persona."""
    return await service.create(conn, user_id=user_id, fields=body)


@router.get("")
async def list_assistants(conn: ConnDep, user_id: UserIdDep, include_archived: bool = False) -> list[Assistant]:
    """Your personas, newest first."""
    return await service.list_for_user(conn, user_id=user_id, include_archived=include_archived)


@router.get("/{assistant_id}")
async def get_assistant(assistant_id: UUID, conn: ConnDep, user_id: UserIdDep) -> Assistant:
    """One persona."""
    return await service.get(conn, user_id=user_id, assistant_id=assistant_id)


@router.patch("/{assistant_id}")
async def update_assistant(assistant_id: UUID, body: AssistantUpdate, conn: ConnDep, user_id: UserIdDep) -> Assistant:
    """Change some fields of a persona."""
    return await service.update(conn, user_id=user_id, assistant_id=assistant_id, changes=body)


@router.delete("/{assistant_id}")
async def archive_assistant(assistant_id: UUID, conn: ConnDep, user_id: UserIdDep) -> Assistant:
    """Archive a persona (its threads go on; it starts no new ones)."""
    return await service.archive(conn, user_id=user_id, assistant_id=assistant_id)
