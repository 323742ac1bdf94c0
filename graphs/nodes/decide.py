"""Reading a reply and deciding what it means (the rules and the classification live in agent.decisions)."""

from __future__ import annotations

from langgraph.runtime import Runtime
from langgraph.types import Command

from agent import decisions, metrics
from agent.decisions import Route
from agent.events import service as events
from agent.suppressions import service as suppressions
from agent.threads import messages
from graphs.context import Context
from graphs.nodes.common import load, thread_uuid
from graphs.state import ThreadState


async def read(state: ThreadState, runtime: Runtime[Context]) -> ThreadState:
    """Collect the replies not yet decided on (they stay unprocessed until decide records its decision)."""
    async with runtime.context.pool.connection() as conn:
        pending = await messages.unprocessed_inbound(conn, thread_id=thread_uuid(state))
    return {"inbound_ids": [str(m["id"]) for m in pending]}


async def decide(state: ThreadState, runtime: Runtime[Context]) -> Command[Route]:
    """Classify the new replies (rules first, then the model) and choose the route."""
    thread, persona = await load(runtime, state)
    ids = state.get("inbound_ids") or []
    async with runtime.context.pool.connection() as conn:
        rows = [m for m in await messages.list_for_thread(conn, user_id=thread.user_id, thread_id=thread.id)]
        replies = [m for m in rows if str(m["id"]) in ids]
        suppressed = await suppressions.reason_for(conn, user_id=thread.user_id, email=thread.recipient_email)
    if not replies:
        return Command(goto="wait", update={"inbound_ids": []})
    last_sent = next((m["text"] for m in reversed(rows) if m["direction"] == "out"), None)
    decision, model = await decisions.classify(
        runtime.context.llm, persona=persona, replies=replies, last_sent=last_sent,
        today=runtime.context.clock().date(), suppressed_reason=suppressed, recipient=thread.recipient_email)
    route, extra = decisions.route(decision, replies_sent=state.get("replies_sent", 0), max_replies=persona.max_replies)
    async with runtime.context.pool.connection() as conn:
        await events.record(
            conn, user_id=thread.user_id, thread_id=thread.id, kind="decision", model=model,
            summary=f"Reply read as {decision['intent']} ({decision['confidence']:.0%}): {decision['reason']}",
            detail={**decision, "route": route, "message_ids": ids}, dedupe_key=f"decide:{ids[-1]}",
        )
        metrics.decision(decision)
        await messages.mark_processed(conn, message_ids=[r["id"] for r in replies])
    return Command(goto=route, update={"decision": decision, "inbound_ids": [], **extra})
