"""Crash recovery, run by the periodic sweep: stalled jobs, threads left active with no job, lost events.

A worker that dies (SIGKILL, OOM, power) leaves its jobs in `doing`; procrastinate's heartbeats tell which
workers are gone, and its own stalled-job query and retry bring those jobs back. What no job carries any more
(a thread left `active`, a reply stored but never announced) is found from the threads themselves and queued
again; the runner ignores anything that turns out to be stale. Due follow-ups need no sweep: the timer tick
(runtime/timers.py) queues every due one each time it runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from uuid import UUID

from procrastinate import exceptions as pq_exceptions
from procrastinate.jobs import Job
from psycopg import AsyncConnection
from psycopg import errors as pg_errors

from agent.threads import service as threads
from agent.threads.lifecycle import EventType, Status, WaitKind
from runtime.defer import RESUME_THREAD, RUN_THREAD, defer_resume
from runtime.services import Services

log = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 5
"""How often a worker writes its heartbeat (procrastinate's update_heartbeat_interval)."""
STALLED_AFTER_SECONDS = 20
"""A worker whose heartbeat is older than this is dead (four missed beats; procrastinate's stalled_worker_timeout)."""
SWEEP_CRON = "* * * * * */15"
"""The sweep runs every 15 s (croniter's sixth field is seconds): a dead worker's jobs run again within ~40 s."""
QUIET_SECONDS = 30
"""How long a thread may sit active or a reply unannounced before the sweep steps in."""


@dataclass(frozen=True, slots=True)
class Recovered:
    """What one sweep queued again."""

    stalled_jobs: int
    orphaned_threads: int
    unread_replies: int


async def recover(svc: Services) -> Recovered:
    """Retry stalled jobs, then queue what threads are owed: a run, their unread replies.

    One sweep at a time across workers (a slow sweep and the next one would retry the same jobs).
    """
    async with svc.locks.hold("sweep"):  # waiting for it holds no pool connection
        return await _recover(svc)


async def _recover(svc: Services) -> Recovered:
    stalled = list(await svc.jobs.job_manager.get_stalled_jobs(seconds_since_heartbeat=STALLED_AFTER_SECONDS))
    for job in stalled:
        await retry_stalled(svc, job)
    async with svc.pool.connection() as conn:
        orphans = await _active_without_job(conn)
        unread = await threads.waiting_with_unread_replies(conn, older_than_seconds=QUIET_SECONDS)
    for thread_id in orphans:
        await defer_resume(svc.jobs, thread_id=thread_id, event={"type": EventType.retry.value, "source": "sweep"},
                           queueing_lock=f"recover:{thread_id}")
    for thread_id in unread:
        await defer_resume(svc.jobs, thread_id=thread_id, event={"type": EventType.reply.value, "source": "sweep"},
                           queueing_lock=f"sweep:{thread_id}")
    found = Recovered(len(stalled), len(orphans), len(unread))
    if any((found.stalled_jobs, found.orphaned_threads, found.unread_replies)):
        log.info("sweep: %s", found)
    return found


async def retry_stalled(svc: Services, job: Job) -> None:
    """Put a dead worker's job back in the queue; when an identical job (same queueing lock) is queued, that one runs
    (runtime.defer.JobManager)."""
    log.warning("retrying job %s (%s) whose worker died", job.id, job.task_name)
    try:
        await svc.jobs.job_manager.retry_job(job)
    except pq_exceptions.ConnectorException as exc:
        if not isinstance(exc.__cause__, pg_errors.RaiseException):
            raise
        log.warning("job %s is no longer in doing (finished or retried meanwhile): %s", job.id, exc.__cause__)


async def _active_without_job(conn: AsyncConnection) -> list[UUID]:
    """Threads left `active` (not waiting in the send queue) with no job that will run them soon."""
    cur = await conn.execute(
        "SELECT t.id FROM threads t"
        " WHERE t.status = %(active)s AND t.wait_kind IS DISTINCT FROM %(slot)s"
        " AND t.updated_at < now() - make_interval(secs => %(quiet)s)"
        " AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs j WHERE j.task_name = ANY(%(tasks)s)"
        "   AND j.args->>'thread_id' = t.id::text AND (j.status = 'doing' OR (j.status = 'todo'"
        "   AND (j.scheduled_at IS NULL OR j.scheduled_at < now() + make_interval(secs => %(quiet)s)))))",
        {"active": Status.active.value, "slot": WaitKind.send_slot.value, "quiet": QUIET_SECONDS,
         "tasks": [RUN_THREAD, RESUME_THREAD]})
    return [row["id"] for row in await cur.fetchall()]
