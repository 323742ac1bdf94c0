"""The process's Prometheus metrics: every family is defined here, once, and incremented where the event happens.

Each process (server, worker) counts what it did itself and exposes it on its own endpoint; Prometheus scrapes
every process and sums. Figures read from the database (threads by status, the send queue) are computed at
scrape time by the server's collector (server/metrics.py), never counted here.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import Counter, Histogram

PREFIX = "email_assistant"

EMAILS_SENT = Counter(f"{PREFIX}_emails_sent", "Emails handed to the mail transport and marked sent by the outbox.",
                      ["kind"])
REPLIES_RECEIVED = Counter(f"{PREFIX}_replies_received", "Inbound messages stored once and matched to a thread.")
DECISIONS = Counter(f"{PREFIX}_decisions", "Decisions recorded about replies, by intent and source (rules/model).",
                    ["intent", "source"])
MODEL_SECONDS = Histogram(f"{PREFIX}_model_seconds", "Duration of language-model calls, by schema and outcome.",
                          ["schema", "outcome"], buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 60, 120))
MODEL_TOKENS = Counter(f"{PREFIX}_model_tokens", "Tokens the language model reported, by kind (input/output).",
                       ["kind"])
GMAIL_ERRORS = Counter(f"{PREFIX}_gmail_errors", "Failed Gmail API attempts (retried or not), by reason.", ["reason"])
JOBS = Counter(f"{PREFIX}_jobs", "Jobs run by this process, by task and outcome (succeeded/failed).",
               ["task", "outcome"])
JOB_SECONDS = Histogram(f"{PREFIX}_job_seconds", "Duration of jobs run by this process, by task.", ["task"],
                        buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300))


def email_sent(*, kind: str) -> None:
    """The outbox marked one email sent."""
    EMAILS_SENT.labels(kind=kind).inc()


def reply_received() -> None:
    """One inbound message was stored for a thread."""
    REPLIES_RECEIVED.inc()


def decision(detail: dict[str, Any]) -> None:
    """A decision about a reply was recorded (detail carries intent and source)."""
    DECISIONS.labels(intent=str(detail.get("intent") or "unknown"), source=str(detail.get("source") or "unknown")).inc()


def gmail_error(exc: BaseException) -> None:
    """A Gmail API attempt failed with exc."""
    GMAIL_ERRORS.labels(reason=gmail_error_reason(exc)).inc()


def gmail_error_reason(exc: BaseException) -> str:
    """A short, bounded label for a Gmail failure: Google's reason, else the HTTP status or the error class."""
    status = getattr(exc, "status_code", None)
    if status is not None:
        details = getattr(exc, "error_details", None)
        if isinstance(details, list) and details and isinstance(details[0], dict) and details[0].get("reason"):
            return str(details[0]["reason"])[:40]
        return f"http_{status}"
    name = type(exc).__name__
    return {"RefreshError": "token_refresh", "TransportError": "network"}.get(name, "network" if isinstance(
        exc, OSError) else name[:40])


@contextmanager
def model_call(schema: str) -> Iterator[None]:
    """Time one model call (its tokens are counted by `model_tokens`)."""
    started = time.perf_counter()
    outcome = "error"
    try:
        yield
        outcome = "ok"
    finally:
        MODEL_SECONDS.labels(schema=schema, outcome=outcome).observe(time.perf_counter() - started)


def model_tokens(*, input_tokens: int, output_tokens: int) -> None:
    """Count the tokens one model call reported (its usage block; a LangChain callback handler cost 0.2 ms a call)."""
    if input_tokens:
        MODEL_TOKENS.labels(kind="input").inc(input_tokens)
    if output_tokens:
        MODEL_TOKENS.labels(kind="output").inc(output_tokens)


@contextmanager
def job(task: str) -> Iterator[None]:
    """Count and time one job run by this process."""
    started = time.perf_counter()
    outcome = "failed"
    try:
        yield
        outcome = "succeeded"
    finally:
        JOBS.labels(task=task, outcome=outcome).inc()
        JOB_SECONDS.labels(task=task).observe(time.perf_counter() - started)
