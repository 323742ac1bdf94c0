"""`email-assistant eval`: a labelled file through the real decision path (and briefs through drafting and the guard).

Replies (lines with `intent` and `route`) go through agent.decisions.classify and agent.decisions.route, the very
functions the graph's decide node calls: the rules first, then the configured model. Briefs (lines with `persona`,
`recipient` and `must`) go through graphs.nodes.drafting.write_checked, the drafting nodes' own write-check-retry
policy. No server and no database are used. See docs/evaluation.md for the formats and the report.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TextIO, TypeVar

from pydantic import BaseModel

from agent import decisions
from agent.assistants.models import AssistantFields
from agent.config import Settings
from agent.llm import HOW_TO_CONFIGURE, LanguageModel, ModelUnavailable, Usage
from agent.mail.automated import detect_auto_reply, detect_bounce
from graphs.nodes import drafting
from runtime.eval_report import brief_summary, reply_summary, write_report

T = TypeVar("T", bound=BaseModel)
RECIPIENT = "maria@betacorp.example"
EVAL_PERSONA = {
    "name": "Evaluation", "sender_name": "Anna Petrova", "role": "Founder", "company": "Acme",
    "offer": "Acme, an assistant that drafts first outreach emails from your own Gmail and hands replies back to you",
    "goal": "book a 20-minute demo", "call_to_action": "Book a 20-minute demo: https://cal.acme.io/anna/demo",
    "knowledge": "Integrates with HubSpot and Pipedrive. Pricing starts at $49 per seat per month.",
    "signature": "Anna Petrova\nFounder, Acme",
}
"""The persona replies are read for when a line brings none (the scenario of tests/eval/replies.jsonl)."""
LAST_SENT = ("Hi Maria,\n\nBeta Corp is hiring SDRs; Acme drafts their first outreach emails from their own Gmail "
             "and hands the replies back to them. Would a 20-minute demo next week be useful?\n\nAnna Petrova")
"""Our email the replies answer, when a line gives no `last_sent`."""


class EvalError(RuntimeError):
    """The dataset cannot be evaluated (unreadable, unknown format, no model)."""


@dataclass
class MeteredModel:
    """The configured model, counting tokens and time per item (the decision and drafting code see a model)."""

    llm: LanguageModel
    calls: list[Usage] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The model's name."""
        return self.llm.name

    async def structured(self, schema: type[T], system: str, user: str) -> T:
        """One structured call, its usage kept."""
        result, usage = await self.llm.structured_with_usage(schema, system, user)
        self.calls.append(usage)
        return result

    def take(self) -> dict[str, Any]:
        """The calls since the last take: count, tokens and model seconds."""
        calls, self.calls = self.calls, []
        return {"model_calls": len(calls), "input_tokens": sum(c.input_tokens for c in calls),
                "output_tokens": sum(c.output_tokens for c in calls),
                "model_seconds": round(sum(c.seconds for c in calls), 4)}


def load(path: Path, *, limit: int | None = None) -> list[dict[str, Any]]:
    """The dataset's lines as objects (the first `limit`); EvalError naming the bad line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise EvalError(f"cannot read {path}: {exc.strerror}") from exc
    items = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalError(f"{path}:{number}: not JSON ({exc.msg})") from exc
        if not isinstance(item, dict) or "id" not in item or kind_of(item) is None:
            raise EvalError(f"{path}:{number}: neither a reply (id, text, intent, route) nor a brief "
                            "(id, persona, recipient, must)")
        items.append(item)
        if limit is not None and len(items) >= limit:
            break
    if not items:
        raise EvalError(f"{path} holds no items")
    return items


def kind_of(item: dict[str, Any]) -> str | None:
    """'reply', 'brief' or None."""
    if {"text", "intent", "route"} <= item.keys():
        return "reply"
    if {"persona", "recipient", "must"} <= item.keys():
        return "brief"
    return None


def _persona(fields: dict[str, Any]) -> AssistantFields:
    return AssistantFields(**{k: v for k, v in fields.items() if k in AssistantFields.model_fields})


async def read_reply(llm: MeteredModel, item: dict[str, Any], *, today: date) -> dict[str, Any]:
    """One labelled reply through the rules and the model, as the decide node reads it."""
    subject, headers = item.get("subject") or "", item.get("headers") or {}
    sender = item.get("from") or RECIPIENT
    row = {"subject": subject, "text": item["text"], "full_text": item["text"], "headers": headers,
           "from_addr": sender, "auto_reply": detect_auto_reply(headers, subject, sender),
           "bounce": detect_bounce(headers, "", sender, subject)}
    persona = _persona({**EVAL_PERSONA, **(item.get("persona") or {})})
    started = time.perf_counter()
    entry: dict[str, Any] = {"id": item["id"], "kind": "reply", "lang": item.get("lang"),
                             "expected_intent": item["intent"], "expected_route": item["route"]}
    try:
        decision, _model = await decisions.classify(llm, persona=persona, replies=[row],
                                                    last_sent=item.get("last_sent") or LAST_SENT, today=today,
                                                    recipient=RECIPIENT)
        route, _extra = decisions.route(decision, replies_sent=0, max_replies=persona.max_replies)
        entry.update(predicted_intent=decision["intent"], predicted_route=route, source=decision["source"],
                     confidence=decision["confidence"], error=None)
    except ModelUnavailable as exc:
        entry.update(predicted_intent=None, predicted_route=None, source=None, confidence=None, error=str(exc))
    entry["intent_ok"] = entry["predicted_intent"] == entry["expected_intent"]
    entry["route_ok"] = entry["predicted_route"] == entry["expected_route"]
    entry["ok"] = entry["intent_ok"] and entry["route_ok"]
    entry["seconds"] = round(time.perf_counter() - started, 4)
    return {**entry, **llm.take()}


async def draft_brief(llm: MeteredModel, item: dict[str, Any]) -> dict[str, Any]:
    """One brief through drafting and the guard (one retry on a refusal), then what a good email must show."""
    persona = _persona(item["persona"])
    recipient = item["recipient"]
    fields = {k: str(recipient.get(k) or "") for k in ("email", "name", "company", "context")}
    expected = drafting.expected_language(persona, latest_inbound=None, recipient_language=recipient.get("language"))
    ctx = drafting.guard_context(persona, recipient_fields=fields, their_texts=[], expected=expected)
    variables = {"r": fields, "conversation": [], "feedback": None, "examples": [],
                 "write_in": drafting.language_name(expected)}
    started = time.perf_counter()
    entry: dict[str, Any] = {"id": item["id"], "kind": "brief", "lang": item["must"].get("language")}
    try:
        attempts = await drafting.write_checked(llm, kind="first", persona=persona, subject="", variables=variables,
                                                ctx=ctx)
    except ModelUnavailable as exc:
        entry.update(ok=False, guard_ok=False, guard_first_ok=False, attempts=0, failed=[], error=str(exc))
    else:
        last, text = attempts[-1], attempts[-1].text.lower()
        must = item["must"]
        offer_ok = all(term.lower() in text for term in must.get("offer_terms", []))
        cta_ok = not must.get("cta") or must["cta"].lower() in text
        entry.update(guard_ok=last.ok, guard_first_ok=attempts[0].ok, attempts=len(attempts),
                     failed=[v.check for v in last.verdicts if not v.ok], offer_ok=offer_ok, cta_ok=cta_ok,
                     ok=last.ok and offer_ok and cta_ok, subject=last.subject, text=last.text, error=None)
    entry["seconds"] = round(time.perf_counter() - started, 4)
    return {**entry, **llm.take()}


async def run(settings: Settings, *, dataset: Path, out: Path | None, limit: int | None, stream: TextIO,
              today: date | None = None) -> int:
    """Evaluate the dataset with the configured model, print the report, write results.json; the exit code."""
    try:
        items = load(dataset, limit=limit)
    except EvalError as exc:
        stream.write(f"email-assistant eval: {exc}\n")
        return 2
    llm = LanguageModel(settings)
    if not llm.configured:
        stream.write(f"email-assistant eval: {HOW_TO_CONFIGURE}\n")
        return 2
    metered = MeteredModel(llm)
    entries: list[dict[str, Any]] = []
    for item in items:
        if kind_of(item) == "reply":
            entries.append(await read_reply(metered, item, today=today or date.today()))
        else:
            entries.append(await draft_brief(metered, item))
    summary = _summary(entries)
    write_report(stream, entries, summary, model=llm.name)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        results = {"model": llm.name, "dataset": str(dataset), "summary": summary, "items": entries}
        (out / "results.json").write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


def _summary(entries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    replies = [e for e in entries if e["kind"] == "reply"]
    briefs = [e for e in entries if e["kind"] == "brief"]
    summary: dict[str, Any] = {"items": len(entries), "replies": reply_summary(replies) if replies else None,
                               "briefs": brief_summary(briefs) if briefs else None}
    summary["seconds_per_item"] = round(sum(e["seconds"] for e in entries) / len(entries), 4)
    summary["tokens_per_item"] = round(sum(e["input_tokens"] + e["output_tokens"] for e in entries) / len(entries), 1)
    summary["errors"] = sum(1 for e in entries if e.get("error"))
    return summary
