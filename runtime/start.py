"""Starting a thread: store it, then queue its first run; shared by the API and the dashboard."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg import AsyncConnection

from agent.campaigns import service as campaigns
from agent.errors import StorageError
from agent.threads import service
from agent.threads.models import ThreadCreate
from runtime import defer
from runtime.services import Services


async def start_thread(svc: Services, conn: AsyncConnection, user_id: UUID, data: ThreadCreate,
                       campaign_id: UUID | None = None) -> dict[str, Any]:
    """Create the thread (in the campaign, if any) and queue its job; a refused row leaves nothing half-written."""
    async with conn.transaction():  # a savepoint: a refused row leaves the connection usable
        row = await service.create(conn, user_id=user_id, data=data, transport=await svc.transport_name_for(user_id))
        if campaign_id is not None:
            await campaigns.attach(conn, user_id=user_id, campaign_id=campaign_id, thread_id=row.id)
    await conn.commit()  # the worker must see the thread before its job runs
    try:
        await defer.defer_run(svc.jobs, thread_id=row.id)
    except Exception as exc:  # nothing half-written: the thread is removed when its job cannot be queued
        await service.delete(conn, thread_id=row.id)
        await conn.commit()
        raise StorageError("Could not queue the thread; nothing was created. Try again.") from exc
    return row
