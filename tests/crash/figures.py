"""Counting what a crash run left behind, at the Gmail fake and in the database."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from tests.crash.cluster import USERS, Cluster

VALID_AT_REST = {"waiting", "awaiting_approval", "needs_human", "closed"}
LIVE_WORKER_SECONDS = 30
STUCK_JOBS_SQL = (
    "SELECT j.id, j.task_name, j.args FROM procrastinate_jobs j LEFT JOIN procrastinate_workers w ON w.id = j.worker_id"
    f" WHERE j.status = 'doing' AND (w.id IS NULL OR w.last_heartbeat < now() - interval '{LIVE_WORKER_SECONDS} seconds')"
)


def _norm(msgid: Any) -> str:
    return str(msgid or "").strip()


def count(cluster: Cluster, *, delivered: list[dict[str, str]]) -> dict[str, Any]:
    """Every figure of the run: duplicates, undecided replies, invalid threads, stuck jobs (see docs/reliability.md)."""
    assert cluster.gmail is not None
    sent = [m.parsed for email in USERS for m in cluster.gmail.messages(email, "SENT")]
    by_msgid = Counter(_norm(m["Message-ID"]) for m in sent)
    outbox = {_norm(r["message_id"]): (str(r["thread_id"]), r["step"])
              for r in cluster.query("SELECT thread_id, step, message_id FROM outbox")}
    by_step = Counter(outbox.get(_norm(m["Message-ID"]), ("unknown", _norm(m["Message-ID"]))) for m in sent)
    reply_ids = {d["message_id"] for d in delivered}
    answers = Counter(_norm(m["In-Reply-To"]) for m in sent if _norm(m["In-Reply-To"]) in reply_ids)

    stored = {r["message_id"]: r for r in cluster.query(
        "SELECT id, message_id, thread_id, processed_at FROM messages WHERE direction = 'in'")}
    decided = {mid for r in cluster.query("SELECT detail->'message_ids' AS ids FROM events WHERE kind = 'decision'")
               for mid in (r["ids"] or [])}
    not_stored = [d for d in delivered if d["message_id"] not in stored]
    unprocessed = [d for d in delivered if d["message_id"] in stored and stored[d["message_id"]]["processed_at"] is None]
    no_decision = [d for d in delivered if d["message_id"] in stored and str(stored[d["message_id"]]["id"]) not in decided]

    recorded = {r["message_id"] for r in cluster.query("SELECT message_id FROM messages WHERE direction = 'out'")}
    unrecorded_parent = [d for d in not_stored if d.get("in_reply_to") not in recorded]
    stuck = cluster.query(STUCK_JOBS_SQL)
    stuck_ids = {r["id"] for r in stuck}
    live_jobs = Counter(r["thread_id"] for r in cluster.query(
        "SELECT id, args->>'thread_id' AS thread_id FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
        " AND args ? 'thread_id'") if r["id"] not in stuck_ids)
    threads = cluster.query("SELECT id, status, wait_kind, wait_id, park_reason FROM threads")
    invalid = []
    for t in threads:
        ok = (t["status"] in VALID_AT_REST and (t["status"] == "closed" or t["wait_id"] is not None)) \
            or (t["status"] == "paused" and t["park_reason"]) \
            or (t["status"] == "active" and (t["wait_kind"] == "send_slot" or live_jobs[str(t["id"])]))
        if not ok:
            invalid.append({"thread_id": str(t["id"]), "status": t["status"], "wait_kind": t["wait_kind"],
                            "live_jobs": live_jobs[str(t["id"])]})
    return {
        "threads": len(threads),
        "emails_sent": len(sent),
        "replies_delivered": len(delivered),
        "duplicate_emails_by_message_id": sum(n - 1 for n in by_msgid.values() if n > 1),
        "duplicate_emails_by_thread_step": sum(n - 1 for n in by_step.values() if n > 1),
        "sent_without_outbox_row": sum(n for key, n in by_step.items() if key[0] == "unknown"),
        "duplicate_answers_to_one_reply": sum(n - 1 for n in answers.values() if n > 1),
        "undecided_replies": len(not_stored) + len(no_decision),
        "replies_never_stored": len(not_stored),
        "never_stored_answering_an_unrecorded_send": len(unrecorded_parent),
        "replies_stored_unprocessed": len(unprocessed),
        "replies_stored_without_decision": len(no_decision),
        "invalid_threads": len(invalid),
        "active_threads_without_job_or_wait": sum(1 for t in invalid if t["status"] == "active"),
        "parked_threads": sum(1 for t in threads if t["status"] == "paused"),
        "stuck_jobs": len(stuck),
        "stuck_jobs_by_task": dict(Counter(r["task_name"] for r in stuck)),
        "thread_statuses": dict(Counter(t["status"] for t in threads)),
        "park_reasons": dict(Counter((t["park_reason"] or "")[:80] for t in threads if t["status"] == "paused")),
        "examples": {"invalid_threads": invalid[:5], "never_stored": not_stored[:5], "without_decision": no_decision[:5]},
    }


def table(figures: dict[str, Any]) -> str:
    """The scalar figures as an aligned two-column text table."""
    rows = [(k, v) for k, v in figures.items() if isinstance(v, (int, float, str))]
    width = max(len(k) for k, _ in rows)
    lines = [f"{'figure'.ljust(width)}  value", f"{'-' * width}  -----"]
    lines += [f"{k.ljust(width)}  {v}" for k, v in rows]
    for key in ("kills_by_point", "thread_statuses", "stuck_jobs_by_task", "park_reasons"):
        if figures.get(key):
            lines.append(f"{key}: {json.dumps(figures[key], sort_keys=True)}")
    return "\n".join(lines)
