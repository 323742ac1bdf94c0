"""The approval step: only when the persona's autonomy mode asks for it."""

from __future__ import annotations

from typing import Literal

from langgraph.runtime import Runtime
from langgraph.types import Command
from psycopg import AsyncConnection

from agent.edits import service as edits
from agent.events import service as events
from agent.threads.lifecycle import EventType, WaitKind
from graphs.context import Context
from graphs.nodes.common import connect, load, next_wait_id, record, wait_for
from graphs.nodes.drafting import warn_human
from graphs.routes import next_node
from graphs.state import ThreadState

SUMMARY = {EventType.approve: "Draft approved.", EventType.reject: "Draft rejected; nothing sent.",
           EventType.regenerate: "Asked for a new draft.", EventType.takeover: "You took over; draft discarded.",
           EventType.reply: "A new reply arrived; the draft was discarded."}
Target = Literal["schedule", "human", "read", "compose_first", "respond", "follow_up"]


async def review(state: ThreadState, runtime: Runtime[Context]) -> Command[Target]:
    """Wait for approve / edit / reject / regenerate when the draft needs the user's approval."""
    draft = state["draft"]
    thread, persona = await load(runtime, state)
    entered = thread.wait_id == next_wait_id(state, WaitKind.approval)
    if not entered and not persona.autonomy.needs_review(draft["kind"]):
        # Decided once, on entry: a persona switched to autonomous later must not approve a waiting draft.
        return Command(goto="schedule", update={"event": {"type": EventType.approve.value, "auto": True}})

    async def enter(conn: AsyncConnection, wait_id: str) -> None:
        await events.record(conn, user_id=thread.user_id, thread_id=thread.id, kind="awaiting_approval",
                            summary="A draft is waiting for your approval.", detail={"wait_id": wait_id},
                            dedupe_key=f"awaiting:{wait_id}")

    event, kind, seq = await wait_for(runtime, state, kind=WaitKind.approval, payload={"draft": draft},
                                      pending_draft=draft, enter=enter)
    update: ThreadState = {"event": event, "wait_seq": seq}
    edited = {k: event[k] for k in ("subject", "text") if event.get(k)}
    if kind is EventType.approve and edited:
        if draft["kind"] != "first":
            edited.pop("subject", None)  # replies keep the conversation's subject
        update["draft"] = {**draft, **edited}
    if kind is EventType.regenerate:
        update["feedback"] = event.get("feedback") or None
    if (kind is EventType.approve and "text" in edited) or (kind is EventType.regenerate and update["feedback"]):
        await _learn(runtime, thread, draft, kind, edited.get("text") or update.get("feedback") or "", seq)
    if kind is EventType.approve and edited:
        final = update["draft"]
        await warn_human(runtime, state, kind=final["kind"], subject=final["subject"], text=final["text"], seq=seq)
    await record(runtime, state, f"review_{kind.value}", SUMMARY[kind], actor="user",
                 detail={"wait_id": f"approval-{seq}", "edited": sorted(edited), "feedback": event.get("feedback")},
                 dedupe_key=f"review:{seq}")
    return Command(goto=next_node(WaitKind.approval, kind, state), update=update)


async def _learn(runtime: Runtime[Context], thread: dict, draft: dict, kind: EventType, revised: str, seq: int) -> None:
    """Keep what the user changed (their edited text, or their feedback) as an example for the persona's drafts."""
    if draft["author"] != "assistant":
        return
    async with connect(runtime) as conn:
        await edits.record(conn, user_id=thread.user_id, assistant_id=thread.assistant_id, thread_id=thread.id,
                           kind="edit" if kind is EventType.approve else "feedback", draft_kind=draft["kind"],
                           original=draft["text"], revised=revised, dedupe_key=f"review:{seq}")
