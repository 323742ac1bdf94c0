"""Drafting nodes: the first email, a reply, a follow-up; each draft passes the guard (graphs.nodes.drafting)."""

from __future__ import annotations

from langgraph.runtime import Runtime
from langgraph.types import Command

from graphs.context import Context
from graphs.nodes.drafting import Composed, compose
from graphs.state import ThreadState


async def compose_first(state: ThreadState, runtime: Runtime[Context]) -> Command[Composed]:
    """Write the first email from the persona and what we know of the recipient."""
    return await compose(runtime, state, kind="first", summary="Drafted the first email.", variables=lambda p: {})


async def respond(state: ThreadState, runtime: Runtime[Context]) -> Command[Composed]:
    """Write the answer to the recipient's latest email."""
    decision = state.get("decision") or {"intent": "unclear", "reason": ""}
    return await compose(runtime, state, kind="reply", summary="Drafted a reply.",
                         variables=lambda p: {"decision": decision})


async def follow_up(state: ThreadState, runtime: Runtime[Context]) -> Command[Composed]:
    """Write a follow-up after silence."""
    number = state.get("follow_ups_sent", 0) + 1
    return await compose(runtime, state, kind="follow_up", summary=f"Drafted follow-up {number}.",
                         variables=lambda p: {"follow_up_number": number, "follow_up_total": p.follow_up_count})
