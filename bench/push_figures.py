"""bench/push.py's figures: from the fakes' request logs and procrastinate's events, what a run measured."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr
from typing import Any

import psycopg

from bench.pipeline import pct
from tests.fakes import _gmail_mime as mime
from tests.fakes.gmail import FakeGmail
from tests.fakes.google_oidc import CERTS_PATH, FakeGoogleOIDC
from tests.fakes.openai_fake import FakeOpenAI

TARGET_P99_MS = 100.0
SEND_PATH = "/messages/send"


@dataclass
class Push:
    """One reply's push: when it was POSTed, answered, and what the endpoint said."""

    recipient: str
    sent: float
    reply_id: str = ""
    """The reply's Gmail message id (its messages.get marks when the sync read it)."""
    responded: float | None = None
    answered: float | None = None
    status: int | None = None
    outcome: str | None = None


def send_times(gmail: FakeGmail) -> dict[str, list[tuple[float, int]]]:
    """Per recipient, (arrival time, status) of every messages.send the Gmail fake received, in arrival order."""
    out: dict[str, list[tuple[float, int]]] = {}
    for r in sorted(list(gmail.requests), key=lambda r: r["at"]):
        if r["method"] == "POST" and r["path"].endswith(SEND_PATH) and isinstance(r["body"], dict):
            to = parseaddr(str(mime.parse(mime.b64url_decode(r["body"].get("raw", "")))["To"]))[1].lower()
            out.setdefault(to, []).append((r["at"], r["status"]))
    return out


def ok_sends(gmail: FakeGmail) -> dict[str, list[float]]:
    """Per recipient, arrival times of the messages.send calls the fake accepted."""
    return {to: [at for at, status in calls if status == 200] for to, calls in send_times(gmail).items()}


def stages(pushes: list[Push], gmail: FakeGmail, model: FakeOpenAI) -> dict[str, dict[str, float]]:
    """Where a reply's time goes, from the fakes' arrival times: push → the next history.list (the sync started),
    → the reply's first messages.get (the sync read it), → the answer's messages.send; and inside that last span,
    the read → the thread's first model call after it → its last model call → the send."""
    calls: dict[str, list[float]] = {}
    for body, at in zip(list(model.requests), list(model.arrivals), strict=False):
        text = json.dumps(body.get("messages"))
        for p in pushes:
            if p.recipient in text:
                calls.setdefault(p.recipient, []).append(at)
                break
    history = sorted(r["at"] for r in gmail.requests if r["path"].endswith("/history"))
    reads: dict[str, float] = {}
    for r in sorted(gmail.requests, key=lambda r: r["at"]):
        reads.setdefault(r["path"].rsplit("/", 1)[-1], r["at"])
    spans: dict[str, list[float]] = {"push_to_history": [], "history_to_read": [], "read_to_send": [],
                                     "read_to_model": [], "model_to_model": [], "model_to_send": []}
    for p in pushes:
        sync = next((at for at in history if at >= p.sent), None)
        read = reads.get(p.reply_id)
        if sync is None or read is None or p.answered is None:
            continue
        # a reply read by a sync that started before its push: that sync's start counts as its push's
        sync = min(sync, read)
        spans["push_to_history"].append(max(0.0, sync - p.sent))
        spans["history_to_read"].append(read - sync)
        spans["read_to_send"].append(p.answered - read)
        mine = [at for at in calls.get(p.recipient, []) if read <= at <= p.answered]
        if mine:
            spans["read_to_model"].append(mine[0] - read)
            spans["model_to_model"].append(mine[-1] - mine[0])
            spans["model_to_send"].append(p.answered - mine[-1])
    return {k: ms(v, 0.5, 0.99) for k, v in spans.items()}


JOBS_SQL = """
SELECT j.task_name || coalesce(' ' || (j.args->'event'->>'type'), ''), count(*),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM s.at - d.at)),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM s.at - d.at)),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM e.at - s.at)),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM e.at - s.at))
FROM procrastinate_jobs j
JOIN LATERAL (SELECT min(at) AS at FROM procrastinate_events WHERE job_id = j.id AND type = 'deferred') d ON true
JOIN LATERAL (SELECT min(at) AS at FROM procrastinate_events WHERE job_id = j.id AND type = 'started') s ON true
JOIN LATERAL (SELECT max(at) AS at FROM procrastinate_events
              WHERE job_id = j.id AND type IN ('succeeded', 'failed')) e ON true
WHERE d.at >= %s AND e.at IS NOT NULL GROUP BY 1 ORDER BY 1"""


def jobs(database_url: str, since: datetime) -> dict[str, dict[str, float]]:
    """Per task (and event), the jobs queued since `since` that finished: how many, queue wait (deferred → started,
    including any scheduled delay) and run time (started → finished), p50/p99 in ms, from procrastinate's events."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(JOBS_SQL, (since,)).fetchall()
    return {task: {"jobs": n, "wait_p50": round(w50 * 1000, 1), "wait_p99": round(w99 * 1000, 1),
                   "run_p50": round(r50 * 1000, 1), "run_p99": round(r99 * 1000, 1)}
            for task, n, w50, w99, r50, r99 in rows}


def ms(values: list[float], *qs: float) -> dict[str, float]:
    out = {f"p{round(q * 100)}": round(pct(values, q) * 1000, 1) for q in qs}
    out["max"] = round(max(values) * 1000, 1) if values else float("nan")
    return out


def figures(pushes: list[Push], gmail: FakeGmail, oidc: FakeGoogleOIDC, model: FakeOpenAI, *, rate: float,
            env: dict[str, str], worker: str) -> dict[str, Any]:
    """The run's figures (see bench/push.py's docstring); `worker` says how the worker ran."""
    latency = [p.answered - p.sent for p in pushes if p.answered is not None]
    statuses = Counter(p.status for p in pushes)
    sends = send_times(gmail)
    answers_per_thread = Counter(sum(status == 200 for _, status in sends.get(p.recipient, [])) - 1 for p in pushes)
    certs = [r for r in oidc.requests if r["path"] == CERTS_PATH]
    span = pushes[-1].sent - pushes[0].sent if len(pushes) > 1 else 0.0
    return {
        "what": "push POST sent -> Gmail fake receives the answer's messages.send; model latency 0 s, so this is the "
                "whole path's overhead (nothing subtracted); percentiles over the answered replies (see answered)",
        "config": {"rate": rate, "threads": len(pushes), "env": env, "worker": worker,
                   "model_latency_s": 0.0, "offered_rate": round((len(pushes) - 1) / span, 2) if span else None},
        "pushes": len(pushes),
        "push_status": {str(k): v for k, v in sorted(statuses.items(), key=lambda kv: str(kv[0]))},
        "push_4xx": sum(v for k, v in statuses.items() if k is not None and 400 <= k < 500),
        "push_5xx": sum(v for k, v in statuses.items() if k is not None and k >= 500),
        "push_outcomes": dict(Counter(p.outcome for p in pushes if p.status == 200)),
        "push_response_ms": ms([p.responded - p.sent for p in pushes if p.responded is not None], 0.5, 0.99),
        "push_to_send_ms": ms(latency, 0.5, 0.9, 0.99),
        "stages_ms": stages(pushes, gmail, model),
        "answered": len(latency),
        "answers_per_thread": {str(k): v for k, v in sorted(answers_per_thread.items())},
        "answered_exactly_once": answers_per_thread == Counter({1: len(pushes)}),
        "gmail_errors": sum(r["status"] >= 400 for r in gmail.requests),
        "certs_fetches": len(certs),
        "certs_fetched_once": len(certs) == 1,
        "target_p99_ms": TARGET_P99_MS,
        "target_met": bool(latency) and len(latency) == len(pushes) and pct(latency, 0.99) * 1000 <= TARGET_P99_MS,
    }


def table(out: dict[str, Any]) -> str:
    """The figures as a short text table."""
    lat, resp = out["push_to_send_ms"], out["push_response_ms"]
    rows = [
        ("pushes (rate/s offered)", f"{out['pushes']} ({out['config']['offered_rate']})"),
        ("worker", out["config"]["worker"]),
        ("push -> send p50 / p90 / p99 / max (ms)", f"{lat['p50']} / {lat['p90']} / {lat['p99']} / {lat['max']}"),
        (f"target p99 <= {TARGET_P99_MS:g} ms", "met" if out["target_met"] else "MISSED"),
        *((f"  {k.replace('_', ' ')} p50 / p99 (ms)", f"{v['p50']} / {v['p99']}") for k, v in out["stages_ms"].items()),
        ("push response p50 / p99 / max (ms)", f"{resp['p50']} / {resp['p99']} / {resp['max']}"),
        ("CPU per reply (ms)", ", ".join(f"{k} {v}" for k, v in out.get("cpu_ms_per_reply", {}).items())),
        ("push 4xx / 5xx", f"{out['push_4xx']} / {out['push_5xx']}"),
        ("push outcomes", ", ".join(f"{k} {v}" for k, v in out["push_outcomes"].items())),
        ("answered exactly once", f"{out['answered_exactly_once']} ({out['answered']}/{out['pushes']} answered)"),
        ("Gmail fake 4xx/5xx", str(out["gmail_errors"])),
        ("certs fetched", f"{out['certs_fetches']} (Cache-Control: {out['certs_cache_control']})"),
    ]
    rows += [(f"  job {task}: n, wait p50/p99, run p50/p99 (ms)",
              f"{j['jobs']}, {j['wait_p50']} / {j['wait_p99']}, {j['run_p50']} / {j['run_p99']}")
             for task, j in out.get("jobs_ms", {}).items()]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k.ljust(width)}  {v}" for k, v in rows]
    for role, frames in (out.get("profile") or {}).items():
        lines += ["", f"{role} py-spy (share of samples):"] + [f"  {s * 100:5.1f}%  {f}" for f, s in frames]
    return "\n".join(lines)
