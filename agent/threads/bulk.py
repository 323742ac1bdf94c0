"""Starting many threads from a list or an uploaded table: validate every row before creating any."""

from __future__ import annotations

from datetime import date
from pathlib import PurePath
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from agent.assistants import service as assistants
from agent.campaigns import service as campaigns
from agent.campaigns.models import Campaign
from agent.config import Settings
from agent.errors import Conflict, InvalidInput
from agent.imports import deliverability
from agent.imports.deliverability import Reason, Verdict
from agent.imports.tabular import Table, read_table
from agent.threads import service as threads
from agent.threads.models import ThreadCreate

MAX_ROWS = 5000
EMAIL_COLUMNS = ("email", "recipient_email", "e-mail", "mail")
NAME_COLUMNS = ("name", "recipient_name", "full_name", "first_name")
COMPANY_COLUMNS = ("company", "recipient_company", "organization", "organisation")
CONTEXT_COLUMNS = ("context", "notes", "note")
TIMEZONE_COLUMNS = ("timezone", "time_zone", "tz")
LANGUAGE_COLUMNS = ("language", "lang", "язык")


def rows_from_csv(data: bytes, *, filename: str | None = None) -> list[dict[str, str]]:
    """Rows of an uploaded CSV/.xlsx keyed by lower-cased header; InvalidInput when it is not usable."""
    table = read_table(data, filename=filename, max_rows=MAX_ROWS)
    headers = [h.lower() for h in table.header]
    if table.column(EMAIL_COLUMNS) is None:
        raise InvalidInput(f"The file needs an email column (one of: {', '.join(EMAIL_COLUMNS)}).")
    return [{h: (row.cells[i] if i < len(row.cells) else "") for i, h in enumerate(headers) if h}
            for row in table.rows]


def _pick(row: dict[str, str], names: tuple[str, ...]) -> str:
    return next((row[n] for n in names if row.get(n)), "")


def to_thread_creates(
    assistant_id: UUID, rows: list[dict[str, Any]],
) -> tuple[list[tuple[int, ThreadCreate]], list[dict[str, Any]]]:
    """Valid rows (with their 1-based row numbers) and per-row errors."""
    valid: list[tuple[int, ThreadCreate]] = []
    errors: list[dict[str, Any]] = []
    for number, row in enumerate(rows, start=1):
        extra = {k: v for k, v in row.items()
                 if k not in (*EMAIL_COLUMNS, *NAME_COLUMNS, *COMPANY_COLUMNS, *CONTEXT_COLUMNS, *TIMEZONE_COLUMNS,
                              *LANGUAGE_COLUMNS) and v}
        context = _pick(row, CONTEXT_COLUMNS)
        if extra:
            context = "\n".join([context, *(f"{k}: {v}" for k, v in extra.items())]).strip()
        try:
            valid.append((number, ThreadCreate(
                assistant_id=assistant_id, recipient_email=_pick(row, EMAIL_COLUMNS),
                recipient_name=_pick(row, NAME_COLUMNS), recipient_company=_pick(row, COMPANY_COLUMNS),
                recipient_timezone=_pick(row, TIMEZONE_COLUMNS) or None,
                recipient_language=_pick(row, LANGUAGE_COLUMNS) or None,
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


# Column mapping (the dashboard's import): the user picks which column holds what; the rest becomes context.

MAPPED_FIELDS = {"email": EMAIL_COLUMNS, "name": NAME_COLUMNS, "company": COMPANY_COLUMNS, "context": CONTEXT_COLUMNS,
                 "timezone": TIMEZONE_COLUMNS, "language": LANGUAGE_COLUMNS}


def guess_mapping(headers: list[str]) -> dict[str, str]:
    """For each field, the first column whose name is a known alias ('' when none)."""
    lowered = [h.lower() for h in headers]
    hints = {"email": ("mail", "почт"), "name": ("name", "имя", "фио"),
             "company": ("company", "organi", "компан", "организ"),
             "context": ("note", "context", "заметк", "примечан", "коммент"), "timezone": ("zone", "tz", "пояс"),
             "language": ("lang", "язык")}
    mapping: dict[str, str] = {}
    for field, aliases in MAPPED_FIELDS.items():
        exact = next((headers[i] for i, h in enumerate(lowered) if h in aliases), "")
        taken = set(mapping.values())
        mapping[field] = exact or next((headers[i] for i, h in enumerate(lowered) if headers[i] not in taken
                                        and any(k in h for k in hints[field])), "")
    return mapping


def rows_with_mapping(table: Table, mapping: dict[str, str]) -> list[dict[str, str]]:
    """Rows keyed email/name/company/context; unmapped non-empty columns are appended to the context."""
    headers, records = table.header, [r.cells for r in table.rows]
    index = {h: i for i, h in reversed(list(enumerate(headers)))}
    used = {index[c] for c in mapping.values() if c in index}
    rows = []
    for record in records:
        def cell(i: int, record: list[str] = record) -> str:
            return record[i] if i < len(record) else ""  # short rows are padded
        row = {f: cell(index[c]) if c in index else "" for f, c in ((f, mapping.get(f, "")) for f in MAPPED_FIELDS)}
        extra = [f"{headers[i]}: {cell(i)}" for i in range(len(headers)) if i not in used and cell(i)]
        row["context"] = "\n".join([row["context"], *extra]).strip()
        rows.append(row)
    return rows


async def screen(conn: Any, *, user_id: UUID, valid: list[tuple[int, ThreadCreate]]) -> tuple[
        list[tuple[int, ThreadCreate]], list[dict[str, Any]]]:
    """Valid rows that can start now, and the skipped ones: repeated in the file, already in a thread, suppressed."""
    emails = [str(d.recipient_email).lower() for _n, d in valid]
    open_threads = await threads.open_to(conn, user_id=user_id, emails=emails)
    cur = await conn.execute("SELECT email, reason FROM suppressions WHERE user_id = %s AND email = ANY(%s)",
                             (user_id, emails))
    suppressed = {r["email"]: r["reason"] for r in await cur.fetchall()}
    seen: dict[str, int] = {}
    start: list[tuple[int, ThreadCreate]] = []
    skipped: list[dict[str, Any]] = []
    for (number, data), email in zip(valid, emails, strict=False):
        if email in seen:
            skipped.append({"row": number, "email": email, "kind": "duplicate", "first_row": seen[email]})
        elif email in suppressed:
            skipped.append({"row": number, "email": email, "kind": "suppressed", "reason": suppressed[email]})
        elif email in open_threads:
            skipped.append({"row": number, "email": email, "kind": "open_thread"})
        else:
            start.append((number, data))
        seen.setdefault(email, number)
    return start, skipped


async def check_domains(ready: list[tuple[int, ThreadCreate]], *, settings: Settings) -> tuple[
        list[tuple[int, ThreadCreate]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows whose domain may receive mail, rows refused ("undeliverable", with a Reason) and rows not checked."""
    domain = {n: deliverability.domain_of(str(d.recipient_email)) for n, d in ready}
    checks = await deliverability.check_domains(domain.values(), settings=settings)
    keep: list[tuple[int, ThreadCreate]] = []
    refused: list[dict[str, Any]] = []
    unchecked: list[dict[str, Any]] = []
    for number, data in ready:
        check = checks[domain[number]]
        if check.verdict is Verdict.REFUSED:
            refused.append({"row": number, "email": str(data.recipient_email), "kind": "undeliverable",
                            "reason": check.reason})
            continue
        if check.verdict is Verdict.NOT_CHECKED and check.reason is not Reason.DISABLED:
            unchecked.append({"row": number, "email": str(data.recipient_email), "reason": check.reason})
        keep.append((number, data))
    return keep, refused, unchecked


# Campaigns: every bulk start is one, named by the user or after the file (or the persona and the day).

def campaign_name(*, name: str | None, filename: str | None, persona: str, today: date) -> str:
    """The name given, else the file's name without its extension, else "<persona> · <date>"."""
    given = " ".join((name or "").split())[:200]
    if given:
        return given
    stem = " ".join(PurePath((filename or "").replace("\\", "/")).stem.split())[:200]
    return stem or f"{persona} · {today.isoformat()}"[:200]


def campaign_source(filename: str | None) -> str:
    """list | csv | xlsx, from how the rows came."""
    if not filename:
        return "list"
    return "xlsx" if filename.lower().endswith(".xlsx") else "csv"


async def open_campaign(conn: Any, *, user_id: UUID, assistant_id: UUID, name: str | None, filename: str | None,
                        today: date, source: str | None = None) -> Campaign:
    """Create the campaign a bulk start's threads belong to (the persona must be the user's)."""
    persona = await assistants.get(conn, user_id=user_id, assistant_id=assistant_id)
    return await campaigns.create(conn, user_id=user_id, assistant_id=assistant_id,
                                  source=source or campaign_source(filename),
                                  name=campaign_name(name=name, filename=filename, persona=persona.name, today=today))
