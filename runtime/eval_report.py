"""The numbers of an evaluation run: per-intent precision and recall, confusion, route accuracy, guard pass rate."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, TextIO

from agent.llm import Intent

NONE = "(error)"
"""The predicted label of an item the model could not answer."""


def _rate(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def reply_summary(entries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy, per-intent precision/recall/support and the confusion counts (expected -> predicted -> n)."""
    pairs = [(e["expected_intent"], e["predicted_intent"] or NONE) for e in entries]
    labels = [i.value for i in Intent if any(i.value in p for p in pairs)]
    labels += sorted({label for p in pairs for label in p} - set(labels))
    per_intent = {}
    for label in labels:
        true_pos = sum(1 for exp, got in pairs if exp == label and got == label)
        predicted = sum(1 for _exp, got in pairs if got == label)
        support = sum(1 for exp, _got in pairs if exp == label)
        if label != NONE:
            per_intent[label] = {"precision": _rate(true_pos, predicted), "recall": _rate(true_pos, support),
                                 "support": support, "predicted": predicted}
    confusion: dict[str, dict[str, int]] = {}
    for (exp, got), n in Counter(pairs).items():
        confusion.setdefault(exp, {})[got] = n
    by_language: dict[str, dict[str, Any]] = {}
    for lang in sorted({e.get("lang") or "?" for e in entries}):
        mine = [e for e in entries if (e.get("lang") or "?") == lang]
        by_language[lang] = {"items": len(mine), "intent_accuracy": _rate(sum(e["intent_ok"] for e in mine), len(mine))}
    return {
        "items": len(entries),
        "intent_accuracy": _rate(sum(e["intent_ok"] for e in entries), len(entries)),
        "route_accuracy": _rate(sum(e["route_ok"] for e in entries), len(entries)),
        "by_rules": sum(1 for e in entries if e.get("source") == "rules"),
        "per_intent": per_intent, "confusion": confusion, "by_language": by_language,
    }


def brief_summary(entries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """How often the guard passed (first try, after the retry), and the offer and call to action were there."""
    n = len(entries)
    failed = Counter(check for e in entries for check in e.get("failed", []))
    return {
        "items": n,
        "guard_pass_rate_first_attempt": _rate(sum(bool(e.get("guard_first_ok")) for e in entries), n),
        "guard_pass_rate": _rate(sum(bool(e.get("guard_ok")) for e in entries), n),
        "offer_rate": _rate(sum(bool(e.get("offer_ok")) for e in entries), n),
        "cta_rate": _rate(sum(bool(e.get("cta_ok")) for e in entries), n),
        "ok_rate": _rate(sum(bool(e.get("ok")) for e in entries), n),
        "failed_checks": dict(failed.most_common()),
    }


def write_report(out: TextIO, entries: Sequence[dict[str, Any]], summary: dict[str, Any], *, model: str) -> None:
    """The human report; its last line is `intent accuracy X%, route accuracy Y% over N items (model M)`."""
    replies, briefs = summary["replies"], summary["briefs"]
    if replies:
        out.write(f"Replies: {replies['items']} ({replies['by_rules']} decided by rules)\n\n")
        out.write(f"{'intent':<16}{'precision':>10}{'recall':>8}{'support':>9}\n")
        for label, row in replies["per_intent"].items():
            out.write(f"{label:<16}{_pct(row['precision']):>10}{_pct(row['recall']):>8}{row['support']:>9}\n")
        labels = list(replies["per_intent"]) + ([NONE] if any(NONE in r for r in replies["confusion"].values()) else [])
        short = [label[:6] for label in labels]
        out.write("\nConfusion (rows: expected, columns: predicted)\n")
        out.write(f"{'':<16}" + "".join(f"{s:>7}" for s in short) + "\n")
        for exp in labels:
            if exp in replies["confusion"]:
                row = replies["confusion"][exp]
                out.write(f"{exp:<16}" + "".join(f"{row.get(got, 0) or '.':>7}" for got in labels) + "\n")
        out.write("\nIntent accuracy by language: " + ", ".join(
            f"{lang} {_pct(v['intent_accuracy'])} ({v['items']})" for lang, v in replies["by_language"].items()) + "\n")
        out.write(f"Route accuracy: {_pct(replies['route_accuracy'])}\n")
    if briefs:
        out.write(f"\nBriefs: {briefs['items']}\n")
        out.write(f"Guard pass rate: {_pct(briefs['guard_pass_rate_first_attempt'])} first attempt, "
                  f"{_pct(briefs['guard_pass_rate'])} after one retry\n")
        out.write(f"Offer named: {_pct(briefs['offer_rate'])}, call to action given: {_pct(briefs['cta_rate'])}, "
                  f"good emails: {_pct(briefs['ok_rate'])}\n")
        if briefs["failed_checks"]:
            out.write("Checks still failing: " + ", ".join(f"{k} {v}" for k, v in briefs["failed_checks"].items())
                      + "\n")
    calls = sum(e["model_calls"] for e in entries)
    tokens_in = sum(e["input_tokens"] for e in entries)
    tokens_out = sum(e["output_tokens"] for e in entries)
    n = len(entries)
    out.write(f"\nLatency: {summary['seconds_per_item']:.3f} s per item; model calls: {calls}; tokens per item: "
              f"{tokens_in / n:.1f} in, {tokens_out / n:.1f} out\n")
    if summary["errors"]:
        out.write(f"Errors: {summary['errors']} item(s) got no answer from the model (see results.json)\n")
    intent = _pct(replies["intent_accuracy"]) if replies else "n/a"
    route = _pct(replies["route_accuracy"]) if replies else "n/a"
    out.write(f"intent accuracy {intent}, route accuracy {route} over {n} items (model {model})\n")
