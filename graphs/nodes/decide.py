"""Reading a reply and deciding what it means (the rules and the classification live in agent.decisions)."""

from __future__ import annotations

from langgraph.runtime import Runtime
from langgraph.types import Command
from psycopg import AsyncConnection

from agent import decisions, metrics
from agent.decisions import Route
from agent.events import service as events
from agent.suppressions import service as suppressions
from agent.threads import messages
from graphs.context import Context
from graphs.nodes.common import connect, keep_ahead, later, load, take_ahead
from graphs.state import ThreadState


async def read(state: ThreadState, runtime: Runtime[Context]) -> ThreadState:
    """Collect the replies not yet decided on (they stay unprocessed until decide records its decision)."""
    thread, _persona = await load(runtime, state)
    async with connect(runtime) as conn:
        pending = await messages.unprocessed_inbound(conn, thread_id=thread.id)
        # what decide reads, read ahead in this transaction (decide always follows read)
        rows = await messages.list_for_thread(conn, user_id=thread.user_id, thread_id=thread.id)
        suppressed = await suppressions.reason_for(conn, user_id=thread.user_id, email=thread.recipient_email)
    ids = [str(m["id"]) for m in pending]
    keep_ahead(f"decide:{thread.id}", (ids, rows, suppressed))
    return {"inbound_ids": ids}


async def decide(state: ThreadState, runtime: Runtime[Context]) -> Command[Route]:
    """Classify the new replies (rules first, then the model) and choose the route."""
    thread, persona = await load(runtime, state)
    ids = state.get("inbound_ids") or []
    ahead = take_ahead(f"decide:{thread.id}")
    if ahead is not None and ahead[0] == ids:
        _ids, rows, suppressed = ahead
    else:  # decide runs again after a failure: read here
        async with connect(runtime) as conn:
            rows = await messages.list_for_thread(conn, user_id=thread.user_id, thread_id=thread.id)
            suppressed = await suppressions.reason_for(conn, user_id=thread.user_id, email=thread.recipient_email)
    replies = [m for m in rows if str(m["id"]) in ids]
    if not replies:
        return Command(goto="wait", update={"inbound_ids": []})
    last_sent = next((m["text"] for m in reversed(rows) if m["direction"] == "out"), None)
    decision, model = await decisions.classify(
        runtime.context.llm, persona=persona, replies=replies, last_sent=last_sent,
        today=runtime.context.clock().date(), suppressed_reason=suppressed, recipient=thread.recipient_email)
    route, extra = decisions.route(decision, replies_sent=state.get("replies_sent", 0), max_replies=persona.max_replies)
    metrics.decision(decision)

    async def decided(conn: AsyncConnection) -> None:
        await events.record(
            conn, user_id=thread.user_id, thread_id=thread.id, kind="decision", model=model,
            summary=f"Reply read as {decision['intent']} ({decision['confidence']:.0%}): {decision['reason']}",
            detail={**decision, "route": route, "message_ids": ids}, dedupe_key=f"decide:{ids[-1]}",
        )
        await messages.mark_processed(conn, message_ids=[r["id"] for r in replies])

    await later(runtime, decided)  # with the next node's first transaction (both writes are idempotent)
    if route == "respond":  # the conversation the answer is written from: these rows (nothing since changed its text)
        keep_ahead(f"conversation:{thread.id}", rows)
    return Command(goto=route, update={"decision": decision, "inbound_ids": [], **extra})
