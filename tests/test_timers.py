"""Follow-up timers are an indexed due time on the waiting thread, fired by the tick; no job waits for days."""

from __future__ import annotations

import json
from datetime import timedelta
from uuid import UUID

import pytest

from agent.config import Settings
from agent.threads import lifecycle
from agent.threads import service as threads
from agent.threads.lifecycle import WaitKind
from runtime import timers
from runtime.defer import RESUME_THREAD
from runtime.startup import open_services
from tests.support import new_thread, query


def _timer_jobs(database_url: str) -> list[tuple[str, dict]]:
    rows = query(database_url, "SELECT args FROM procrastinate_jobs WHERE task_name = %s AND status = 'todo'"
                 " ORDER BY id", (RESUME_THREAD,))
    return [(r["args"]["thread_id"], r["args"]["event"]) for r in rows]


async def _wait(svc, thread_id: UUID, *, due_in: timedelta, kind: WaitKind = WaitKind.reply) -> None:
    async with svc.pool.connection() as conn:
        await lifecycle.enter_wait(conn, thread_id=thread_id, wait_id=f"{kind.value}-1", kind=kind,
                                   follow_up_due_at=svc.clock() + due_in)


async def test_the_tick_queues_each_due_follow_up_once_and_nothing_else(services_settings: Settings,
                                                                        database_url: str) -> None:
    async with open_services(services_settings) as svc:
        due = await new_thread(svc, "due@example.com")
        later = await new_thread(svc, "later@example.com")
        paused = await new_thread(svc, "paused@example.com")
        await _wait(svc, due, due_in=timedelta(minutes=-1))
        await _wait(svc, later, due_in=timedelta(days=3))
        await _wait(svc, paused, due_in=timedelta(minutes=-1))
        query(database_url, "UPDATE threads SET status = 'paused' WHERE id = %s", (paused,))
        assert _timer_jobs(database_url) == [], "entering a wait schedules no job"

        assert await timers.fire_due(svc) == 1
        assert await timers.fire_due(svc) == 0, "the queued follow-up is not queued twice"
    assert _timer_jobs(database_url) == [(str(due), {"type": "followup_due", "wait_id": "reply-1"})]


async def test_a_burst_of_due_follow_ups_is_paged_through(services_settings: Settings, database_url: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timers, "PAGE", 2)
    async with open_services(services_settings) as svc:
        ids = [await new_thread(svc, f"t{i}@example.com") for i in range(5)]
        for tid in ids:
            await _wait(svc, tid, due_in=timedelta(minutes=-1))  # the same minute for all: ties on the due time
        assert await timers.fire_due(svc) == 5
    assert sorted(t for t, _ in _timer_jobs(database_url)) == sorted(map(str, ids))


async def test_a_resume_lost_with_its_worker_is_queued_again_by_the_next_tick(services_settings: Settings,
                                                                              database_url: str) -> None:
    async with open_services(services_settings) as svc:
        tid = await new_thread(svc, "lost@example.com")
        await _wait(svc, tid, due_in=timedelta(seconds=-5))
        assert await timers.fire_due(svc) == 1
        query(database_url, "UPDATE procrastinate_jobs SET status = 'failed' WHERE task_name = %s", (RESUME_THREAD,))
        assert await timers.fire_due(svc) == 1, "the thread still waits and is due: its follow-up is queued again"


async def test_the_due_query_reads_the_partial_index_not_the_waiting_threads(services_settings: Settings,
                                                                             database_url: str) -> None:
    async with open_services(services_settings) as svc:
        template = await new_thread(svc, "template@example.com")
        await _wait(svc, template, due_in=timedelta(days=3))
    # 20,000 threads waiting days ahead, one thread due: the plan must go through the index.
    query(database_url, "INSERT INTO threads (id, user_id, assistant_id, recipient_email, transport, status, wait_id,"
          " wait_kind, follow_up_due_at) SELECT gen_random_uuid(), user_id, assistant_id, 'w' || g || '@example.com',"
          " transport, status, wait_id, wait_kind, follow_up_due_at + g * interval '1 second'"
          " FROM threads, generate_series(1, 20000) g WHERE id = %s", (template,))
    query(database_url, "ANALYZE threads")
    params = {"waiting": "waiting", "reply": "reply", "limit": timers.PAGE, "due": threads.FIRST_DUE[0],
              "id": threads.FIRST_DUE[1]}
    [row] = query(database_url, "EXPLAIN (FORMAT JSON) " + threads.DUE_FOLLOW_UPS, params)
    plan = json.dumps(row["QUERY PLAN"])
    assert "threads_follow_up_due_idx" in plan and "Seq Scan" not in plan, plan
