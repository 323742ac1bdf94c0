"""Reading a reply and deciding what it means."""

from __future__ import annotations

from datetime import date
from typing import Literal

from langgraph.runtime import Runtime
from langgraph.types import Command

from agent import prompts
from agent.events import service as events
from agent.llm import Classification, ModelUnavailable, ReturnDate
from agent.mail.automated import is_out_of_office
from agent.rules import precheck
from agent.suppressions import service as suppressions
from agent.threads import messages
from agent.threads.lifecycle import CloseReason
from graphs.context import Context
from graphs.nodes.common import load, thread_uuid
from graphs.state import ThreadState

LOW_CONFIDENCE = 0.6
RESPOND = {"interested", "question", "objection"}
CLOSE = {"not_interested": CloseReason.not_interested, "unsubscribe": CloseReason.unsubscribed,
         "bounce": CloseReason.bounced}
KEEP_WAITING = {"auto_reply", "out_of_office"}
ESCALATE = {"wrong_person": "They say they are not the right person.",
            "meeting_request": "They want to meet: pick a time with them.",
            "unclear": "The reply is unclear."}


async def read(state: ThreadState, runtime: Runtime[Context]) -> ThreadState:
    """Collect the replies not yet decided on (they stay unprocessed until decide records its decision)."""
    async with runtime.context.pool.connection() as conn:
        pending = await messages.unprocessed_inbound(conn, thread_id=thread_uuid(state))
    return {"inbound_ids": [str(m["id"]) for m in pending]}


Route = Literal["respond", "close", "wait", "escalate"]


async def decide(state: ThreadState, runtime: Runtime[Context]) -> Command[Route]:
    """Classify the new replies (rules first, then the model) and choose the route."""
    thread, persona = await load(runtime, state)
    ids = state.get("inbound_ids") or []
    async with runtime.context.pool.connection() as conn:
        rows = [m for m in await messages.list_for_thread(conn, user_id=thread["user_id"], thread_id=thread["id"])]
        replies = [m for m in rows if str(m["id"]) in ids]
        suppressed = await suppressions.reason_for(conn, user_id=thread["user_id"], email=thread["recipient_email"])
    if not replies:
        return Command(goto="wait", update={"inbound_ids": []})
    decision = precheck(replies, suppressed_reason=suppressed, recipient=thread["recipient_email"])
    model = None
    if decision and decision["intent"] == "auto_reply" and any(is_out_of_office(r["subject"]) for r in replies):
        decision, model = await _away_until(runtime, replies, decision)
    if decision is None:
        last_sent = next((m["text"] for m in reversed(rows) if m["direction"] == "out"), None)
        reply_text = "\n\n".join(r["text"] or r["full_text"] for r in replies if not r["auto_reply"])
        system, user = prompts.render("classify", p=persona, reply=reply_text, last_sent=last_sent,
                                      today=runtime.context.clock().date().isoformat())
        result = await runtime.context.llm.structured(Classification, system, user)
        model = runtime.context.llm.name
        decision = {**result.model_dump(mode="json"), "source": "model"}
    route, extra = _route(decision, state, persona.max_replies)
    async with runtime.context.pool.connection() as conn:
        await events.record(
            conn, user_id=thread["user_id"], thread_id=thread["id"], kind="decision", model=model,
            summary=f"Reply read as {decision['intent']} ({decision['confidence']:.0%}): {decision['reason']}",
            detail={**decision, "route": route, "message_ids": ids}, dedupe_key=f"decide:{ids[-1]}",
        )
        await messages.mark_processed(conn, message_ids=[r["id"] for r in replies])
    return Command(goto=route, update={"decision": decision, "inbound_ids": [], **extra})


async def _away_until(runtime: Runtime[Context], replies: list[dict], decision: dict) -> tuple[dict, str | None]:
    """An away message: ask the model only for the return date; without a model the usual cadence goes on."""
    away = next(r for r in replies if is_out_of_office(r["subject"]))
    system, user = prompts.render("out_of_office", subject=away["subject"], text=away["full_text"] or away["text"],
                                  today=runtime.context.clock().date().isoformat())
    try:
        found = await runtime.context.llm.structured(ReturnDate, system, user)
    except ModelUnavailable as exc:
        return {**decision, "reason": f"{decision['reason']} Return date not read: {exc}"}, None
    back = found.return_date.isoformat() if found.return_date else None
    reason = f"Out of office until {back}; the follow-up waits until the next working day." if back else \
        "Out of office with no return date; the usual follow-up cadence goes on."
    return {**decision, "intent": "out_of_office", "reason": reason, "out_of_office_until": back,
            "source": "rules+model"}, runtime.context.llm.name


def _route(decision: dict, state: ThreadState, max_replies: int) -> tuple[Route, ThreadState]:
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
    if state.get("replies_sent", 0) >= max_replies:
        return "escalate", {"escalation": f"The assistant has already replied {max_replies} times."}
    return "respond", {}
