"""What a reply means and where the thread goes: rules first, then the model (the graph and the eval runner)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, Literal, Protocol, TypeVar

from pydantic import BaseModel

from agent import prompts
from agent.llm import Classification, ModelUnavailable, ReturnDate
from agent.mail.automated import is_out_of_office
from agent.rules import precheck
from agent.threads.lifecycle import CloseReason

T = TypeVar("T", bound=BaseModel)
LOW_CONFIDENCE = 0.6
RESPOND = {"interested", "question", "objection"}
CLOSE = {"not_interested": CloseReason.not_interested, "unsubscribe": CloseReason.unsubscribed,
         "bounce": CloseReason.bounced}
KEEP_WAITING = {"auto_reply", "out_of_office"}
ESCALATE = {"wrong_person": "They say they are not the right person.",
            "meeting_request": "They want to meet: pick a time with them.",
            "unclear": "The reply is unclear."}
Route = Literal["respond", "close", "wait", "escalate"]


class Model(Protocol):
    """What classification needs of a model: its name and structured calls (agent.llm.LanguageModel)."""

    @property
    def name(self) -> str:
        """The model's name."""
        ...

    async def structured(self, schema: type[T], system: str, user: str) -> T:
        """One object of the schema."""
        ...


async def classify(
    llm: Model, *, persona: Any, replies: Sequence[Mapping[str, Any]], last_sent: str | None, today: date,
    suppressed_reason: str | None = None, recipient: str | None = None,
) -> tuple[dict[str, Any], str | None]:
    """The decision on new replies (rules first, then the model) and the model's name when one was asked."""
    decision = precheck(list(replies), suppressed_reason=suppressed_reason, recipient=recipient)
    model = None
    if decision and decision["intent"] == "auto_reply" and any(is_out_of_office(r.get("subject") or "")
                                                               for r in replies):
        decision, model = await _away_until(llm, replies, decision, today=today)
    if decision is None:
        reply_text = "\n\n".join(r.get("text") or r.get("full_text") or "" for r in replies if not r.get("auto_reply"))
        system, user = prompts.render("classify", p=persona, reply=reply_text, last_sent=last_sent,
                                      today=today.isoformat())
        result = await llm.structured(Classification, system, user)
        model = llm.name
        decision = {**result.model_dump(mode="json"), "source": "model"}
    return decision, model


async def _away_until(llm: Model, replies: Sequence[Mapping[str, Any]], decision: dict[str, Any], *,
                      today: date) -> tuple[dict[str, Any], str | None]:
    """An away message: ask the model only for the return date; without a model the usual cadence goes on."""
    away = next(r for r in replies if is_out_of_office(r.get("subject") or ""))
    system, user = prompts.render("out_of_office", subject=away["subject"],
                                  text=away.get("full_text") or away.get("text") or "", today=today.isoformat())
    try:
        found = await llm.structured(ReturnDate, system, user)
    except ModelUnavailable as exc:
        return {**decision, "reason": f"{decision['reason']} Return date not read: {exc}"}, None
    back = found.return_date.isoformat() if found.return_date else None
    reason = f"Out of office until {back}; the follow-up waits until the next working day." if back else \
        "Out of office with no return date; the usual follow-up cadence goes on."
    return {**decision, "intent": "out_of_office", "reason": reason, "out_of_office_until": back,
            "source": "rules+model"}, llm.name


def route(decision: Mapping[str, Any], *, replies_sent: int, max_replies: int) -> tuple[Route, dict[str, Any]]:
    """Where a decision leads, and the state it sets (close reason, resume date or escalation)."""
    intent = decision["intent"]
    if intent in CLOSE:
        return "close", {"close_reason": CLOSE[intent].value}
    if intent in KEEP_WAITING:
        until = decision.get("out_of_office_until")
        return "wait", {"resume_after": date.fromisoformat(until).isoformat() if until else None}
    if intent in ESCALATE:
        return "escalate", {"escalation": ESCALATE[intent]}
    if decision["confidence"] < LOW_CONFIDENCE:
        return "escalate", {"escalation": f"Not sure what the reply means ({decision['confidence']:.0%})."}
    if replies_sent >= max_replies:
        return "escalate", {"escalation": f"The assistant has already replied {max_replies} times."}
    return "respond", {}
