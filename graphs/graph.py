"""The outreach thread graph: compose → review? → schedule → send → wait → read → decide → respond | follow up | escalate | close."""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph

from graphs.context import Context
from graphs.nodes.close import close
from graphs.nodes.compose import compose_first, follow_up, respond
from graphs.nodes.decide import decide, read
from graphs.nodes.human import escalate, human
from graphs.nodes.review import review
from graphs.nodes.schedule import schedule
from graphs.nodes.send import send
from graphs.nodes.wait import wait
from graphs.state import ThreadState

COMPOSER = {"first": "compose_first", "reply": "respond", "follow_up": "follow_up"}


def after_review(state: ThreadState) -> str:
    """Approve sends; regenerate drafts again; reject and take over go to the human; a new reply is read."""
    kind = (state.get("event") or {}).get("type")
    if kind == "approve":
        return "schedule"
    if kind == "regenerate":
        return COMPOSER[state["draft"]["kind"]]
    if kind == "reply":
        return "read"
    return "human"


def after_schedule(state: ThreadState) -> str:
    """The slot came: send; a reply or a takeover came first: read it or hand over; a limit: escalate."""
    return state.get("route") or "send"


def after_send(state: ThreadState) -> str:
    """Back to waiting, back to the human who wrote it, to a reply that came first, or closed."""
    route = state.get("route")
    return {"human": "human", "close": "close", "closed": END, "read": "read"}.get(route or "", "wait")


def after_wait(state: ThreadState) -> str:
    """A reply is read, a due timer follows up (or closes), a takeover goes to the human."""
    return state.get("route") or "read"


def after_decide(state: ThreadState) -> str:
    """respond | close | wait | escalate, as decide chose."""
    return state.get("route") or "escalate"


def after_human(state: ThreadState) -> str:
    """The human's reply is sent (through the queue); hand back returns to the assistant."""
    kind = (state.get("event") or {}).get("type")
    if kind == "human_reply":
        return "schedule"
    if kind == "handback":
        return "compose_first" if state.get("step", 0) == 0 else "wait"
    return "human"


def build() -> StateGraph:
    """The uncompiled graph; compile it with a checkpointer to run it."""
    g = StateGraph(ThreadState, context_schema=Context)
    for node in (compose_first, respond, follow_up, review, schedule, send, wait, read, decide, escalate, human, close):
        g.add_node(node.__name__, node)
    g.add_edge(START, "compose_first")
    for composer in COMPOSER.values():
        g.add_edge(composer, "review")
    g.add_conditional_edges("review", after_review, ["schedule", "human", "read", *COMPOSER.values()])
    g.add_conditional_edges("schedule", after_schedule, ["send", "escalate", "read", "human"])
    g.add_conditional_edges("send", after_send, ["wait", "human", "close", "read", END])
    g.add_conditional_edges("wait", after_wait, ["read", "follow_up", "human", "close"])
    g.add_edge("read", "decide")
    g.add_conditional_edges("decide", after_decide, ["respond", "close", "wait", "escalate"])
    g.add_edge("escalate", "human")
    g.add_conditional_edges("human", after_human, ["schedule", "wait", "compose_first", "human"])
    g.add_edge("close", END)
    return g


def make_graph(config: Any = None) -> Any:
    """The graph compiled without a checkpointer, as exported in langgraph.json."""
    return build().compile(name="outreach_thread")
