"""The approval step: only when the persona's autonomy mode asks for it."""

from __future__ import annotations

from langgraph.runtime import Runtime
from psycopg import AsyncConnection

from agent.events import service as events
from agent.threads import service as threads
from graphs.context import Context
from graphs.nodes.common import load, record, thread_uuid, wait_for
from graphs.state import ThreadState

SUMMARY = {"approve": "Draft approved.", "reject": "Draft rejected; nothing sent.",
           "regenerate": "Asked for a new draft.", "takeover": "You took over; draft discarded.",
           "reply": "A new reply arrived; the draft was discarded."}


async def review(state: ThreadState, runtime: Runtime[Context]) -> ThreadState:
    """Wait for approve / edit / reject / regenerate when the draft needs the user's approval."""
    draft = state["draft"]
    thread, persona = await load(runtime, state)
    entered = thread["wait_id"] == f"approval-{state.get('wait_seq', 0) + 1}"
    if not entered and not persona.autonomy.needs_review(draft["kind"]):
        # Decided once, on entry: a persona switched to autonomous later must not approve a waiting draft.
        return {"event": {"type": "approve", "auto": True}}

    async def enter(conn: AsyncConnection, wait_id: str) -> None:
        await threads.update(conn, thread_id=thread["id"], pending_draft={**draft, "wait_id": wait_id})
        await events.record(conn, user_id=thread["user_id"], thread_id=thread["id"], kind="awaiting_approval",
                            summary="A draft is waiting for your approval.", detail={"wait_id": wait_id},
                            dedupe_key=f"awaiting:{wait_id}")

    event, seq = await wait_for(runtime, state, kind="approval", payload={"draft": draft}, enter=enter)
    async with runtime.context.pool.connection() as conn:
        await threads.update(conn, thread_id=thread_uuid(state), pending_draft=None)
    kind = event.get("type", "")
    update: ThreadState = {"event": event, "wait_seq": seq}
    edited = {k: event[k] for k in ("subject", "text") if event.get(k)}
    if kind == "approve" and edited:
        if draft["kind"] != "first":
            edited.pop("subject", None)  # replies keep the conversation's subject
        update["draft"] = {**draft, **edited}
    if kind == "regenerate":
        update["feedback"] = event.get("feedback") or None
    await record(runtime, state, f"review_{kind}", SUMMARY.get(kind, kind), actor="user",
                 detail={"wait_id": f"approval-{seq}", "edited": sorted(edited), "feedback": event.get("feedback")},
                 dedupe_key=f"review:{seq}")
    return update
