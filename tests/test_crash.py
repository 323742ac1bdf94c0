"""Crash suite, short version: real server and workers SIGKILLed at chosen and random points (tests/crash/).

The long run is `python -m bench.crash --kills 200` (docs/reliability.md).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from tests.crash.figures import table
from tests.crash.harness import Plan, run_crash

log = logging.getLogger(__name__)


@pytest.mark.timeout(600)  # ~3 min on free cores; restarts take 30-60 s on a busy shared machine
@pytest.mark.parametrize("workers", [2, 0], ids=["separate-workers", "in-process-worker"])
def test_killed_processes_come_back_and_every_reply_is_answered_once(workers: int, tmp_path: Path) -> None:
    plan = Plan(kills=12 if workers else 6, threads=8, replies_per_thread=2, workers=workers, seed=7 + workers,
                settle_seconds=90, thread_waves=2, warmup_seconds=6)
    result = run_crash(tmp_path, plan)
    log.info("crash figures (%s):\n%s", result["mode"], table(result))
    summary = json.dumps({k: result[k] for k in ("kills_by_point", "thread_statuses", "examples")}, default=str)
    assert result["kills"] >= plan.kills
    assert result["unexpected_exits"] == 0, summary
    assert result["duplicate_emails_by_message_id"] == 0, summary
    assert result["duplicate_emails_by_thread_step"] == 0, summary
    assert result["duplicate_answers_to_one_reply"] == 0, summary
    assert result["sent_without_outbox_row"] == 0, summary
    assert (result["undecided_replies"], result["invalid_threads"], result["stuck_jobs"]) == (0, 0, 0), \
        f"undecided replies, invalid threads, stuck jobs after the last restart:\n{table(result)}\n{summary}"
