"""The short load run (bench/load.py --quick in miniature): many threads, steady replies, nothing lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.load import fresh_database, run_load


@pytest.mark.timeout(420)  # about 2 min on free cores; the default 180 s is too tight on a busy machine
def test_steady_replies_over_many_threads_are_all_decided(pg_admin: str, template_db: str, tmp_path: Path) -> None:
    url = fresh_database(pg_admin)
    result = run_load(url, tmp_path, threads=60, rate=4, seconds=15)
    assert result.replies_sent >= 55
    assert result.http_errors == 0 and result.error_log_lines == 0
    assert result.drained, f"work left after {result.drain_seconds:.0f} s"
    assert result.replies_undecided == 0 and result.parked_threads == 0
    assert result.answers >= result.replies_sent * 0.5, "replies that came together are answered together"
