"""Follow-up timers: a due time on the waiting thread (indexed), fired by a periodic tick; no job per waiting thread.

A thread waiting for a reply stores when its follow-up falls due (`threads.follow_up_due_at`, set by the wait node in
the transaction that enters the wait). Every few seconds the tick reads the threads that are due, through the partial
index `threads_follow_up_due_idx`, and queues one resume each. So the job queue holds only work that can run now:
100,000 waiting threads cost 100,000 indexed timestamps and no scheduled jobs. A tick that dies, or a resume lost
with its worker, leaves the thread waiting and due, and the next tick queues it again; the queueing lock keeps one
resume per wait in the queue, and the runner ignores one that comes after the wait was answered.
"""

from __future__ import annotations

import logging
from uuid import UUID

from agent.threads import service as threads
from agent.threads.lifecycle import EventType
from runtime.defer import defer_resume
from runtime.services import Services

log = logging.getLogger(__name__)
TICK_CRON = "* * * * * */5"
"""The tick runs every 5 s (croniter's sixth field is seconds): a follow-up goes out at most a few seconds late."""
PAGE = 500
"""Due threads read per query (a campaign's follow-ups can all fall due in the same minute)."""


async def fire_due(svc: Services) -> int:
    """Queue the follow-up of every thread whose timer is due; returns how many resumes were queued."""
    queued, after = 0, threads.FIRST_DUE
    while True:
        async with svc.pool.connection() as conn:
            due = await threads.due_follow_ups(conn, limit=PAGE, after=after)
        for _due_at, thread_id, wait_id in due:
            queued += await queue_follow_up(svc, thread_id=thread_id, wait_id=wait_id)
        if len(due) < PAGE:
            break
        after = due[-1][0], due[-1][1]
    if queued:
        log.info("timers: %d follow-ups due", queued)
    return queued


async def queue_follow_up(svc: Services, *, thread_id: UUID, wait_id: str) -> bool:
    """Queue the followup_due event of this wait; False when it is already queued."""
    return await defer_resume(svc.jobs, thread_id=thread_id, event={"type": EventType.followup_due.value,
                                                                      "wait_id": wait_id},
                              queueing_lock=f"timer:{thread_id}:{wait_id}")
