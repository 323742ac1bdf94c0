"""Bulk actions: one action on many threads, each through the per-thread action table, with an outcome per thread."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

from agent.errors import AppError, Conflict, InvalidInput, NotFound
from agent.threads import service as threads
from agent.threads.lifecycle import Status
from agent.threads.service import ThreadFilter
from runtime.services import Services
from server.actions import ACTIONS
from server.i18n import gettext as _
from server.pages.common import N_

BULK_ACTIONS = ("pause", "resume", "stop", "takeover")
MAX_THREADS = 10_000
"""The most threads one bulk action may touch; more is refused (narrow the filter)."""
PARALLEL = 4
"""Threads acted on at once: a few connections of the pool, never all of them."""

@dataclass(frozen=True)
class Outcome:
    """What one bulk action did to one thread."""

    thread_id: UUID
    recipient_email: str
    recipient_name: str
    outcome: Literal["done", "skipped"]
    reason: str | None = None
    """Why it was skipped, in English (the dashboard translates the known reasons)."""


def _reason(action: str, status: Status, exc: AppError) -> str:
    """Why the action did not apply, from the thread's status before it ran (else the action's own message)."""
    if status is Status.closed:
        return N_("already closed")
    if action == "pause" and status is Status.paused:
        return N_("already paused")
    if action == "resume":
        return N_("not paused")
    if action == "takeover" and status is Status.needs_human:
        return N_("already yours")
    return exc.message


def check_action(action: str) -> None:
    """InvalidInput unless `action` is one bulk actions offer."""
    if action not in BULK_ACTIONS:
        raise InvalidInput(_("Choose what to do with the selected threads: %(actions)s.",
                             actions=", ".join(BULK_ACTIONS)))


async def resolve(svc: Services, *, user_id: UUID, ids: list[UUID] | None, where: ThreadFilter | None) -> list[UUID]:
    """The threads to act on: the given ids (deduplicated, in order) or what the filter matches; at most MAX_THREADS."""
    if ids is not None:
        chosen = list(dict.fromkeys(ids))
    else:
        async with svc.pool.connection() as conn:
            chosen = await threads.ids_matching(conn, user_id=user_id, where=where or ThreadFilter(),
                                                limit=MAX_THREADS + 1)
    if len(chosen) > MAX_THREADS:
        raise InvalidInput(_("A bulk action acts on at most %(max)s threads at once; narrow the filter (status, "
                             "assistant or search) and run it in parts.", max=f"{MAX_THREADS:,}"))
    if not chosen:
        raise InvalidInput(_("No threads chosen: select some, or everything the filter matches."))
    return chosen


async def run(svc: Services, *, user_id: UUID, action: str, thread_ids: list[UUID]) -> list[Outcome]:
    """Run `action` on each thread as its own action would (its checks, its events); one outcome per thread."""
    check_action(action)
    entry = ACTIONS[action]
    async with svc.pool.connection() as conn:
        known: dict[UUID, dict[str, Any]] = await threads.recipients(conn, user_id=user_id, thread_ids=thread_ids)
    gate = asyncio.Semaphore(PARALLEL)

    async def one(thread_id: UUID) -> Outcome:
        row = known.get(thread_id)
        if row is None:
            return Outcome(thread_id, "", "", "skipped", N_("not found"))
        status = Status(row["status"])
        try:
            async with gate:
                await entry.run(svc, user_id=user_id, thread_id=thread_id)
        except NotFound:
            return Outcome(thread_id, row["recipient_email"], row["recipient_name"], "skipped", N_("not found"))
        except Conflict as exc:
            return Outcome(thread_id, row["recipient_email"], row["recipient_name"], "skipped",
                           _reason(action, status, exc))
        return Outcome(thread_id, row["recipient_email"], row["recipient_name"], "done")

    return list(await asyncio.gather(*(one(t) for t in thread_ids)))
