"""bench/push.py in miniature: every figure is there and every pushed reply is answered exactly once (no timings)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench.push import main


@pytest.mark.timeout(300)
def test_push_bench_small_run_answers_each_reply_once(pg_admin: str, tmp_path: Path) -> None:
    out_file = tmp_path / "push.json"
    out = main(["--threads", "3", "--rate", "5", "--pg", pg_admin, "--out", str(out_file)])
    assert json.loads(out_file.read_text()) == json.loads(json.dumps(out)), "the JSON holds the returned figures"
    assert out["pushes"] == 3 and out["push_status"] == {"200": 3}
    assert out["push_4xx"] == 0 and out["push_5xx"] == 0 and out["gmail_errors"] == 0
    assert sum(out["push_outcomes"].values()) == 3
    assert set(out["push_outcomes"]) <= {"queued", "already_queued", "up_to_date"}
    assert out["answered"] == 3 and out["answers_per_thread"] == {"1": 3} and out["answered_exactly_once"]
    assert out["certs_fetches"] == 1 and out["certs_fetched_once"], "Google's certificates are fetched once"
    assert "max-age" in out["certs_cache_control"]
    for key in ("push_to_send_ms", "push_response_ms", *(f"stages_ms.{k}" for k in out["stages_ms"])):
        figures = out[key] if "." not in key else out["stages_ms"][key.split(".", 1)[1]]
        assert figures and all(math.isfinite(v) and v >= 0 for v in figures.values()), (key, figures)
    assert set(out["stages_ms"]) == {"push_to_history", "history_to_read", "read_to_send", "read_to_model",
                                     "model_to_model", "model_to_send"}
    assert out["jobs_ms"]["ea:sync_mailbox"]["jobs"] >= 1
    assert out["jobs_ms"]["ea:resume_thread reply"]["jobs"] == 3
    assert set(out["cpu_ms_per_reply"]) == {"server", "worker"}
    assert out["config"]["worker"] == "separate x1" and out["config"]["model_latency_s"] == 0.0
