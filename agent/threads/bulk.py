"""Starting many threads from a list or a CSV file: validate every row before creating any."""

from __future__ import annotations

import csv
import io
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from agent.errors import Conflict, InvalidInput
from agent.threads.models import ThreadCreate

MAX_ROWS = 5000
EMAIL_COLUMNS = ("email", "recipient_email", "e-mail", "mail")
NAME_COLUMNS = ("name", "recipient_name", "full_name", "first_name")
COMPANY_COLUMNS = ("company", "recipient_company", "organization", "organisation")
CONTEXT_COLUMNS = ("context", "notes", "note")


def rows_from_csv(data: bytes) -> list[dict[str, str]]:
    """CSV rows keyed by lower-cased header; InvalidInput when it is not a usable CSV."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput("The CSV file must be UTF-8 encoded.") from exc
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise InvalidInput("The CSV file is empty or has no header row.")
    headers = [h.strip().lower() for h in reader.fieldnames]
    if not any(h in EMAIL_COLUMNS for h in headers):
        raise InvalidInput(f"The CSV needs an email column (one of: {', '.join(EMAIL_COLUMNS)}).")
    rows = [{k.strip().lower(): (v or "").strip() for k, v in row.items() if k} for row in reader]
    if len(rows) > MAX_ROWS:
        raise InvalidInput(f"At most {MAX_ROWS} rows per upload.")
    return rows


def _pick(row: dict[str, str], names: tuple[str, ...]) -> str:
    return next((row[n] for n in names if row.get(n)), "")


def to_thread_creates(assistant_id: UUID, rows: list[dict[str, Any]]) -> tuple[list[tuple[int, ThreadCreate]], list[dict[str, Any]]]:
    """Valid rows (with their 1-based row numbers) and per-row errors."""
    valid: list[tuple[int, ThreadCreate]] = []
    errors: list[dict[str, Any]] = []
    for number, row in enumerate(rows, start=1):
        extra = {k: v for k, v in row.items()
                 if k not in (*EMAIL_COLUMNS, *NAME_COLUMNS, *COMPANY_COLUMNS, *CONTEXT_COLUMNS) and v}
        context = _pick(row, CONTEXT_COLUMNS)
        if extra:
            context = "\n".join([context, *(f"{k}: {v}" for k, v in extra.items())]).strip()
        try:
            valid.append((number, ThreadCreate(
                assistant_id=assistant_id, recipient_email=_pick(row, EMAIL_COLUMNS),
                recipient_name=_pick(row, NAME_COLUMNS), recipient_company=_pick(row, COMPANY_COLUMNS),
                context=context[:5000],
            )))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            errors.append({"row": number, "email": _pick(row, EMAIL_COLUMNS), "error": f"{field}: {first['msg']}"})
    return valid, errors


def skip_reason(exc: Conflict) -> str:
    """A short reason for a skipped row."""
    return exc.message
