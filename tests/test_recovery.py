"""The sweep brings back what a dead worker left: stalled jobs, active threads with no job, unannounced replies."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import pytest

from agent.assistants import service as assistants
from agent.assistants.models import AssistantFields
from agent.config import Settings
from agent.threads import lifecycle
from agent.threads import service as threads
from agent.threads.lifecycle import WaitKind
from agent.threads.models import ThreadCreate
from runtime import recovery
from runtime.defer import RESUME_THREAD, RUN_THREAD
from runtime.services import Services
from runtime.startup import open_services
from tests.support import new_thread, query


def _jobs(database_url: str, thread_id: UUID) -> list[dict]:
    return query(database_url, "SELECT task_name, status, args FROM procrastinate_jobs"
                 " WHERE args->>'thread_id' = %s ORDER BY id", (str(thread_id),))


async def test_a_job_whose_worker_died_is_retried(services_settings: Settings, database_url: str) -> None:
    async with open_services(services_settings) as svc:
        tid = await new_thread(svc, "bob@example.com")
        [worker] = query(database_url, "INSERT INTO procrastinate_workers (last_heartbeat) VALUES"
                         " (now() - interval '5 minutes') RETURNING id")
        query(database_url, "INSERT INTO procrastinate_jobs (queue_name, task_name, args, status, worker_id)"
              " VALUES ('default', %s, %s, 'doing', %s)", (RUN_THREAD, f'{{"thread_id": "{tid}"}}', worker["id"]))
        alive = query(database_url, "INSERT INTO procrastinate_workers DEFAULT VALUES RETURNING id")[0]["id"]
        query(database_url, "INSERT INTO procrastinate_jobs (queue_name, task_name, args, status, worker_id)"
              " VALUES ('default', %s, %s, 'doing', %s)", (RUN_THREAD, '{"thread_id": "x"}', alive))
        found = await recovery.recover(svc)
    assert found.stalled_jobs == 1
    assert [j["status"] for j in _jobs(database_url, tid)] == ["todo"]
    assert query(database_url, "SELECT status FROM procrastinate_jobs WHERE args->>'thread_id' = 'x'")[0][
        "status"] == "doing", "a job of a live worker is left alone"


async def test_a_dead_workers_job_whose_twin_is_queued_gives_way_and_the_others_are_still_retried(
        services_settings: Settings, database_url: str) -> None:
    async with open_services(services_settings) as svc:
        tid = await new_thread(svc, "twin@example.com")
        [worker] = query(database_url, "INSERT INTO procrastinate_workers (last_heartbeat) VALUES"
                         " (now() - interval '5 minutes') RETURNING id")
        insert = ("INSERT INTO procrastinate_jobs (queue_name, task_name, args, status, worker_id, queueing_lock)"
                  " VALUES ('default', %s, %s, %s, %s, %s) RETURNING id")
        args = f'{{"thread_id": "{tid}", "event": {{"type": "retry"}}}}'
        [dead] = query(database_url, insert, (RESUME_THREAD, args, "doing", worker["id"], f"retry:{tid}"))
        [twin] = query(database_url, insert, (RESUME_THREAD, args, "todo", None, f"retry:{tid}"))
        [other] = query(database_url, insert, (RUN_THREAD, f'{{"thread_id": "{tid}"}}', "doing", worker["id"], None))
        found = await recovery.recover(svc)
    status = {r["id"]: r["status"] for r in query(database_url, "SELECT id, status FROM procrastinate_jobs")}
    assert found.stalled_jobs == 2
    assert (status[dead["id"]], status[twin["id"]], status[other["id"]]) == ("failed", "todo", "todo")


async def test_a_stalled_job_that_finished_meanwhile_is_left_alone(services_settings: Settings, database_url: str) -> None:
    async with open_services(services_settings) as svc:
        tid = await new_thread(svc, "late@example.com")
        [worker] = query(database_url, "INSERT INTO procrastinate_workers (last_heartbeat) VALUES"
                         " (now() - interval '5 minutes') RETURNING id")
        query(database_url, "INSERT INTO procrastinate_jobs (queue_name, task_name, args, status, worker_id)"
              " VALUES ('default', %s, %s, 'doing', %s)", (RUN_THREAD, f'{{"thread_id": "{tid}"}}', worker["id"]))
        [job] = await svc.jobs.job_manager.get_stalled_jobs(seconds_since_heartbeat=recovery.STALLED_AFTER_SECONDS)
        query(database_url, "UPDATE procrastinate_jobs SET status = 'succeeded' WHERE id = %s", (job.id,))
        await recovery.retry_stalled(svc, job)  # another sweep, or its slow worker, got there first
    assert [j["status"] for j in _jobs(database_url, tid)] == ["succeeded"]


async def test_an_active_thread_with_no_job_is_resumed_and_a_busy_one_is_not(services_settings: Settings,
                                                                          database_url: str) -> None:
    async with open_services(services_settings) as svc:
        orphan = await new_thread(svc, "orphan@example.com")
        busy = await new_thread(svc, "busy@example.com")
        fresh = await new_thread(svc, "fresh@example.com")
        query(database_url, "UPDATE threads SET updated_at = now() - interval '10 minutes' WHERE id <> %s", (fresh,))
        query(database_url, "INSERT INTO procrastinate_jobs (queue_name, task_name, args, status)"
              " VALUES ('default', %s, %s, 'todo')", (RESUME_THREAD, f'{{"thread_id": "{busy}", "event": {{}}}}'))
        found = await recovery.recover(svc)
        again = await recovery.recover(svc)
    assert found.orphaned_threads == 1
    [job] = _jobs(database_url, orphan)
    assert job["task_name"] == RESUME_THREAD and job["args"]["event"]["type"] == "retry"
    assert len(_jobs(database_url, busy)) == 1 and _jobs(database_url, fresh) == []
    assert again.orphaned_threads == 0, "the queued resume counts as a job"


async def test_a_failed_job_whose_twin_is_queued_gives_way_instead_of_staying_in_doing(
        services_settings: Settings, database_url: str) -> None:
    # What the worker does after a job raised: job_manager.retry_job. procrastinate's own retry would raise on the
    # queueing lock (the failed sync's twin is queued) and leave the job in `doing` until the stalled-job sweep.
    async with open_services(services_settings) as svc:
        insert = ("INSERT INTO procrastinate_jobs (queue_name, task_name, args, status, queueing_lock)"
                  " VALUES ('default', 'ea:sync_mailbox', %s, %s, 'sync:m1') RETURNING id")
        [failed] = query(database_url, insert, ('{"mailbox_id": "m1"}', "todo"))
        job = await svc.jobs.job_manager.fetch_job(queues=None, worker_id=None)
        assert job is not None and job.id == failed["id"]
        [twin] = query(database_url, insert, ('{"mailbox_id": "m1"}', "todo"))
        await svc.jobs.job_manager.retry_job(job)
        status = {r["id"]: r["status"] for r in query(database_url, "SELECT id, status FROM procrastinate_jobs")}
        assert (status[failed["id"]], status[twin["id"]]) == ("failed", "todo")

        job = await svc.jobs.job_manager.fetch_job(queues=None, worker_id=None)  # the twin runs, fails: no twin now
        assert job is not None and job.id == twin["id"]
        await svc.jobs.job_manager.retry_job(job)
    assert query(database_url, "SELECT status FROM procrastinate_jobs WHERE id = %s", (twin["id"],)) == [
        {"status": "todo"}], "with no twin queued, the job is retried as usual"
