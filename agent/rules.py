"""Deterministic checks on a reply that need no model: bounces, automated mail, unsubscribes."""

from __future__ import annotations

import re
from typing import Any

UNSUBSCRIBE = re.compile(
    r"\b(unsubscribe|remove me|take me off|stop (e-?mailing|contacting|writing)|do not (e-?mail|contact) me|"
    r"don'?t (e-?mail|contact) me|opt[- ]?out)\b|отпиш|не пишите|удалите меня|abmelden|désabonner|darme de baja",
    re.IGNORECASE,
)


def precheck(replies: list[dict[str, Any]], *, suppressed_reason: str | None) -> dict[str, Any] | None:
    """A decision from rules alone, or None when the model must read the reply."""
    if any(r.get("bounce") for r in replies):
        reason = next(r["bounce"] for r in replies if r.get("bounce"))
        return _decision("bounce", f"Delivery failure: {reason}.")
    if suppressed_reason:
        return _decision("unsubscribe", f"The sender is on the suppression list ({suppressed_reason}).")
    human = [r for r in replies if not r.get("auto_reply")]
    if not human:
        return _decision("auto_reply", f"Automated reply ({replies[-1]['auto_reply']}); not answered.")
    text = "\n".join(r.get("text") or "" for r in human)
    if len(text) < 2000 and UNSUBSCRIBE.search(text):
        return _decision("unsubscribe", "The reply asks not to be emailed again.")
    return None


def _decision(intent: str, reason: str) -> dict[str, Any]:
    return {"intent": intent, "confidence": 1.0, "reason": reason, "out_of_office_until": None, "source": "rules"}
