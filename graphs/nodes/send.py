"""The only node with an outside side effect: sending, idempotent through the outbox."""

from __future__ import annotations

from functools import partial
from typing import Literal

from langgraph.graph import END
from langgraph.runtime import Runtime
from langgraph.types import Command
from psycopg import AsyncConnection

from agent.events import service as events
from agent.mail import outbox
from agent.threads import messages
from agent.threads.lifecycle import CloseReason, Status
from agent.threads.models import ThreadRow
from graphs.context import Context, ThreadHeld
from graphs.nodes.common import connect, thread_uuid
from graphs.state import Draft, ThreadState

__all__ = ["ThreadHeld", "send"]  # ThreadHeld lives in graphs.context (no LangGraph import)

Target = Literal["wait", "human", "close", "read", "__end__"]
REPLY_FIRST = "reply_first"


async def send(state: ThreadState, runtime: Runtime[Context]) -> Command[Target]:
    """Send the current draft once; the recipient comes from the thread row, never from the model."""
    draft = state["draft"]
    step = state.get("step", 0) + 1
    # The outbox's transactions open through `connect`: the run's waiting writes join the one that claims the step.
    result = await outbox.send_step(
        partial(connect, runtime), runtime.context.transport, thread_id=thread_uuid(state), step=step, kind=draft["kind"],
        author=draft["author"], subject=draft["subject"], text=draft["text"], sender=runtime.context.sender,
        sent_at=runtime.context.clock(), gate=partial(_gate, step=step, draft=draft),
    )
    if result.withheld == Status.closed:
        return Command(goto=END, update={"draft": None})
    if result.withheld == Status.paused:
        raise ThreadHeld("paused by the user before sending")
    if result.withheld == REPLY_FIRST:
        return Command(goto="read", update={"draft": None})
    if not result.sent:
        return Command(goto="close", update={"step": step, "draft": None, "close_reason": CloseReason.suppressed.value})
    update: ThreadState = {"step": step, "draft": None}
    if draft["kind"] == "follow_up":
        update["follow_ups_sent"] = state.get("follow_ups_sent", 0) + 1
    elif draft["kind"] == "reply":
        update["replies_sent"] = state.get("replies_sent", 0) + 1
        update["follow_ups_sent"] = 0
    if draft["author"] == "human":
        async with connect(runtime) as conn:
            pending = await messages.unprocessed_inbound(conn, thread_id=thread_uuid(state))
            await messages.mark_processed(conn, message_ids=[m["id"] for m in pending])
        return Command(goto="human", update=update)
    return Command(goto="wait", update=update)


async def _gate(conn: AsyncConnection, thread: ThreadRow, attempts: int, *, step: int, draft: Draft) -> str | None:
    """Whether the step is withheld, decided on the thread as it is now (a Stop or Pause during the run wins) in the
    transaction that claims it: closed, paused, or a reply must be read first (then recorded as dropped)."""
    # Only a step that never reached the transport gives way to a reply: an attempted one is reconciled, never dropped.
    if thread.status == Status.closed:
        return Status.closed
    if thread.status == Status.paused and not thread.park_reason:
        return Status.paused
    if draft["author"] != "assistant" or attempts or not await messages.has_unread_reply(conn, thread_id=thread.id):
        return None
    await events.record(conn, user_id=thread.user_id, thread_id=thread.id, kind="draft_dropped",
                        summary="A reply arrived before this email went out; it was not sent and the assistant reads "
                        "the reply first.", detail={"step": step, "kind": draft["kind"]}, dedupe_key=f"dropped:{step}")
    return REPLY_FIRST
