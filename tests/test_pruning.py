"""Storage stays small: a closed thread's finished jobs and timers go at once, other finished jobs after a day."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import UUID

import procrastinate
import pytest

from agent.assistants import service as assistants
from agent.assistants.models import AssistantFields
from agent.config import Settings
from agent.threads import lifecycle
from agent.threads import service as threads
from agent.threads.lifecycle import CloseReason
from agent.threads.models import ThreadCreate
from runtime import jobs, runner
from runtime.defer import RESUME_THREAD, RUN_THREAD
from runtime.services import Services
from runtime.startup import open_services
from tests.support import new_thread, query


def _job(database_url: str, task: str, args: dict, status: str, finished_hours_ago: int = 0) -> int:
    [row] = query(database_url, "INSERT INTO procrastinate_jobs (queue_name, task_name, args, status)"
                  " VALUES ('default', %s, %s, %s) RETURNING id", (task, json.dumps(args), status))
    query(database_url, "INSERT INTO procrastinate_events (job_id, type, at) VALUES"
          " (%s, 'deferred', now() - make_interval(hours => %s))", (row["id"], finished_hours_ago))
    return row["id"]


def _statuses(database_url: str, ids: list[int]) -> dict[int, str]:
    rows = query(database_url, "SELECT id, status FROM procrastinate_jobs WHERE id = ANY(%s)", (ids,))
    return {r["id"]: r["status"] for r in rows}


async def test_a_closed_thread_loses_its_finished_jobs_and_timers(services_settings: Settings, database_url: str) -> None:
    async with open_services(services_settings) as svc:
        tid, other = await new_thread(svc, "ann@example.com"), await new_thread(svc, "bea@example.com")
        done = _job(database_url, RUN_THREAD, {"thread_id": str(tid)}, "succeeded")
        timer = _job(database_url, RESUME_THREAD, {"thread_id": str(tid), "event": {"type": "followup_due"}}, "todo")
        reply = _job(database_url, RESUME_THREAD, {"thread_id": str(tid), "event": {"type": "reply"}}, "todo")
        others = _job(database_url, RUN_THREAD, {"thread_id": str(other)}, "succeeded")
        async with svc.pool.connection() as conn:
            await lifecycle.close(conn, thread_id=tid, reason=CloseReason.closed)
        assert await runner.advance(svc, thread_id=tid, event={"type": "followup_due", "wait_id": "reply-1"}) \
            == "closed"
    left = _statuses(database_url, [done, timer, reply, others])
    assert done not in left and timer not in left
    assert left == {reply: "todo", others: "succeeded"}, "a queued event and other threads' jobs stay"
    assert query(database_url, "SELECT indexdef FROM pg_indexes WHERE indexname = 'procrastinate_jobs_thread_idx'"), \
        "the prune finds a thread's jobs through an index, not a scan of every timer"


async def test_the_hourly_prune_removes_jobs_finished_over_a_day_ago(services_settings: Settings, database_url: str) -> None:
    old = _job(database_url, RUN_THREAD, {"thread_id": "a"}, "succeeded", finished_hours_ago=30)
    recent = _job(database_url, RUN_THREAD, {"thread_id": "b"}, "succeeded", finished_hours_ago=2)
    failed = _job(database_url, RUN_THREAD, {"thread_id": "c"}, "failed", finished_hours_ago=30)
    waiting = _job(database_url, RESUME_THREAD, {"thread_id": "d"}, "todo", finished_hours_ago=30)
    tick = _job(database_url, jobs.TIMERS_TASK, {"timestamp": 0}, "succeeded", finished_hours_ago=0)
    failed_tick = _job(database_url, jobs.SWEEP_TASK, {"timestamp": 0}, "failed", finished_hours_ago=0)
    async with open_services(services_settings) as svc:
        assert any(p.periodic_id == "prune_jobs" for p in svc.jobs.periodic_registry.periodic_tasks.values())
        job = procrastinate.jobs.Job(queue="default", lock=None, queueing_lock="prune_jobs", task_name="ea:prune_jobs")
        await jobs.prune_jobs(procrastinate.JobContext(app=svc.jobs, job=job, start_timestamp=0,
                                                       abort_reason=lambda: None,
                                                       additional_context={"services": svc}), timestamp=0)
    assert _statuses(database_url, [old, recent, failed, waiting, tick, failed_tick]) == {
        recent: "succeeded", failed: "failed", waiting: "todo", failed_tick: "failed"}, \
        "a succeeded tick goes at once; a failed one is kept"
