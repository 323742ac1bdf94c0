"""Deterministic checks on a reply that need no model: bounces, automated mail, unsubscribes."""

from __future__ import annotations

import re
from typing import Any

# Opt-out phrasings specific enough to act on without the model. Questions ("can I opt out of the annual
# plan?") and "remove me from CC"-style requests are left to the classifier.
UNSUBSCRIBE = re.compile(
    r"\b(unsubscribe( me)?|remove me(?! from (the )?(cc|copy|thread|call|meeting|invite))|"
    r"take me off (your|this|the) list|stop (e-?mailing|contacting|writing to) me|"
    r"do not (e-?mail|contact|write to) me|don'?t (e-?mail|contact|write to) me|opt[- ]?(me )?out)\b|"
    r"отпишите|не пишите мне|удалите меня из (рассылки|списка)|"
    r"abmelden|désabonnez|darme de baja",
    re.IGNORECASE,
)


def precheck(
    replies: list[dict[str, Any]], *, suppressed_reason: str | None, recipient: str | None = None
) -> dict[str, Any] | None:
    """A decision from rules alone, or None when the model must read the reply."""
    if any(r.get("bounce") for r in replies):
        reason = next(r["bounce"] for r in replies if r.get("bounce"))
        return _decision("bounce", f"Delivery failure: {reason}.")
    if suppressed_reason:
        return _decision("unsubscribe", f"The sender is on the suppression list ({suppressed_reason}).")
    human = [r for r in replies if not r.get("auto_reply")]
    if not human:
        return _decision("auto_reply", f"Automated reply ({replies[-1]['auto_reply']}); not answered.")
    if recipient and any(r.get("from_addr") and r["from_addr"].lower() != recipient for r in human):
        other = next(r["from_addr"] for r in human if r.get("from_addr") and r["from_addr"].lower() != recipient)
        return _decision("unclear", f"The reply came from {other}, not from the recipient: you decide.")
    text = "\n".join(r.get("text") or "" for r in human)
    if len(text) < 2000 and "?" not in text and UNSUBSCRIBE.search(text):
        return _decision("unsubscribe", "The reply asks not to be emailed again.")
    return None


def _decision(intent: str, reason: str) -> dict[str, Any]:
    return {"intent": intent, "confidence": 1.0, "reason": reason, "out_of_office_until": None, "source": "rules"}
