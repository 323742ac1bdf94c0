"""Drafting nodes: the first email, a reply, a follow-up."""

from __future__ import annotations

from langgraph.runtime import Runtime

from agent import prompts
from agent.llm import FirstDraft, ReplyDraft
from agent.mail.outbox import reply_subject
from graphs.context import Context
from graphs.nodes.common import conversation, load, recipient, record, with_signature
from graphs.state import ThreadState


async def compose_first(state: ThreadState, runtime: Runtime[Context]) -> ThreadState:
    """Write the first email from the persona and what we know of the recipient."""
    thread, persona = await load(runtime, state)
    system, user = prompts.render("first_message", p=persona, r=recipient(thread), feedback=state.get("feedback"))
    draft = await runtime.context.llm.structured(FirstDraft, system, user)
    await record(runtime, state, "drafted", "Drafted the first email.", model=runtime.context.llm.name,
                 detail={"kind": "first", "feedback": state.get("feedback")})
    text = with_signature(draft.body, persona)
    return {"draft": {"kind": "first", "subject": draft.subject.strip()[:300], "text": text, "author": "assistant"},
            "feedback": None}


async def respond(state: ThreadState, runtime: Runtime[Context]) -> ThreadState:
    """Write the answer to the recipient's latest email."""
    thread, persona = await load(runtime, state)
    system, user = prompts.render(
        "reply", p=persona, r=recipient(thread), conversation=await conversation(runtime, thread),
        decision=state.get("decision") or {"intent": "unclear", "reason": ""}, feedback=state.get("feedback"),
    )
    draft = await runtime.context.llm.structured(ReplyDraft, system, user)
    await record(runtime, state, "drafted", "Drafted a reply.", model=runtime.context.llm.name,
                 detail={"kind": "reply", "feedback": state.get("feedback")})
    return {"draft": {"kind": "reply", "subject": reply_subject(thread.subject or ""),
                      "text": with_signature(draft.body, persona), "author": "assistant"}, "feedback": None}


async def follow_up(state: ThreadState, runtime: Runtime[Context]) -> ThreadState:
    """Write a follow-up after silence."""
    thread, persona = await load(runtime, state)
    number = state.get("follow_ups_sent", 0) + 1
    system, user = prompts.render(
        "follow_up", p=persona, r=recipient(thread), conversation=await conversation(runtime, thread),
        follow_up_number=number, follow_up_total=persona.follow_up_count, feedback=state.get("feedback"),
    )
    draft = await runtime.context.llm.structured(ReplyDraft, system, user)
    await record(runtime, state, "drafted", f"Drafted follow-up {number}.", model=runtime.context.llm.name,
                 detail={"kind": "follow_up", "number": number, "feedback": state.get("feedback")})
    return {"draft": {"kind": "follow_up", "subject": reply_subject(thread.subject or ""),
                      "text": with_signature(draft.body, persona), "author": "assistant"}, "feedback": None}
