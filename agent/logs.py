"""Logging: text or JSON lines, with the request, job, thread and user of the work in progress; secrets never logged."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

# What the current work is about; set by the server's request middleware and by the job wrapper.
CONTEXT_FIELDS = ("request_id", "job", "task", "thread_id", "user_id")
_context: ContextVar[dict[str, str]] = ContextVar("ea_log_context", default={})  # noqa: B039 - never mutated
# DEBUG is for our own code (and procrastinate's job lifecycle, whose arguments are cut below): other libraries'
# DEBUG lines carry request bodies, headers or tokens (the prompt holds the email; Google's calls and authlib's
# OAuth exchange hold tokens), and new ones arrive with any upgrade (openai now logs through httpx2/httpcore2), so
# their DEBUG records are dropped whatever EA_LOG_LEVEL says.
DEBUG_LOGGERS = ("agent", "graphs", "runtime", "server", "procrastinate", "bench")
# Known talkers are also raised at the source (no formatting cost): INFO at most, or WARNING for per-call chatter.
CHATTY = ("openai", "httpx", "httpcore", "httpx2", "httpcore2", "urllib3", "googleapiclient", "google",
          "google_auth_httplib2", "authlib", "cachecontrol", "langsmith", "langgraph", "langchain", "hpack",
          "psycopg", "procrastinate.psycopg_connector", "asyncio", "multipart", "mailparser_reply", "grpc")
QUIET = ("psycopg.pool",)  # three INFO lines per pooled connection
# procrastinate's worker says "Starting job" and "ended with status" at INFO for every job, and its periodic deferrer
# "deferred" for every tick (every 5 s for the timers); the `job done` line (runtime/jobs.py) says what matters
# once: below DEBUG they are dropped.
JOB_CHATTER = ("procrastinate.worker", "procrastinate.periodic")
# OAuth access tokens and refresh tokens look like these whatever the provider.
TOKEN_PATTERNS = re.compile(r"\b(ya29\.[\w.-]+|1//[\w.-]+|eyJ[\w-]{10,}\.[\w-]+\.[\w-]+|sk-[\w-]{8,})")
REDACTED = "[redacted]"
JOB_ARGS = re.compile(r"\[(\d+)\]\(.*\)")


def current() -> dict[str, str]:
    """The fields of the work in progress."""
    return _context.get()


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Attach these fields (None skipped) to every record logged inside the block."""
    token = _context.set({**_context.get(), **{k: str(v) for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def _ours(name: str) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in DEBUG_LOGGERS)


class ContextFilter(logging.Filter):
    """Copy the context fields onto each record, and blank out secrets from the rendered message."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        """Drop other libraries' DEBUG records; keep the rest with the context fields added, redacted."""
        if record.levelno < logging.INFO and not _ours(record.name):
            return False
        for key, value in current().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) >= 3:
            # Query strings carry OAuth codes and states: the access log shows the path only.
            record.args = (*record.args[:2], str(record.args[2]).split("?", 1)[0], *record.args[3:])
        message = record.getMessage()
        clean = self.redact(message)
        if record.name.startswith("procrastinate"):  # job arguments can hold a human's draft: ids only
            clean = JOB_ARGS.sub(r"[\1](…)", clean)
        if clean != message:
            record.msg, record.args = clean, None
        return True

    def redact(self, text: str) -> str:
        """Text with known secrets and token-shaped strings replaced."""
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return TOKEN_PATTERNS.sub(REDACTED, text)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the context fields, and the exception if any."""

    def __init__(self, redact: ContextFilter) -> None:
        super().__init__()
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        """Render the record."""
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
        }
        for key in (*CONTEXT_FIELDS, *getattr(record, "json_fields", ())):
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value
        if record.exc_info:
            line["exception"] = self._redact.redact(self.formatException(record.exc_info))
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The classic line, with the request/job id when there is one, and redacted tracebacks."""

    def __init__(self, redact: ContextFilter) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        """Render the record."""
        text = super().format(record)
        where = " ".join(f"{k}={getattr(record, k)}" for k in ("request_id", "job", "thread_id")
                         if getattr(record, k, None))
        return self._redact.redact(f"{text} [{where}]" if where else text)

    def formatException(self, ei: Any) -> str:  # noqa: N802 - logging's name
        """Tracebacks are redacted like messages."""
        return self._redact.redact(super().formatException(ei))


def configure(*, level: str, fmt: str, secrets: Iterable[str] = ()) -> None:
    """Install one stderr handler for the whole process (uvicorn's loggers included)."""
    redact = ContextFilter(secrets)
    handler = logging.StreamHandler()
    handler.addFilter(redact)
    handler.setFormatter(JsonFormatter(redact) if fmt == "json" else TextFormatter(redact))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # Python warnings become log records too (JSON lines in JSON mode)
    floor = max(logging.getLevelName(level.upper()), logging.INFO)
    for name in CHATTY:
        logging.getLogger(name).setLevel(floor)
    for name in QUIET:
        logging.getLogger(name).setLevel(max(floor, logging.WARNING))
    for name in JOB_CHATTER:
        logging.getLogger(name).setLevel(logging.DEBUG if level.upper() == "DEBUG" else logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
