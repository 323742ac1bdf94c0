"""The outreach thread graph: compose (guarded) → review? | escalate → schedule → send → wait → read → decide →
respond | follow up | escalate | close.

One routing style: a node that branches returns `Command[Literal[...]]` (its targets drawn from the annotation);
a node that does not has a plain edge. Where an answered wait goes is the table in graphs/routes.py.
"""

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

NODES = (compose_first, respond, follow_up, review, schedule, send, wait, read, decide, escalate, human, close)
BRANCHING = (compose_first, respond, follow_up, review, schedule, send, wait, decide, human)
"""The nodes that return Command: each names its possible targets in its return annotation."""


def build() -> StateGraph:
    """The uncompiled graph; compile it with a checkpointer to run it."""
    g = StateGraph(ThreadState, context_schema=Context)
    for node in NODES:
        g.add_node(node.__name__, node)
    g.add_edge(START, "compose_first")
    g.add_edge("read", "decide")
    g.add_edge("escalate", "human")
    g.add_edge("close", END)
    return g


def make_graph(config: Any = None) -> Any:
    """The graph compiled without a checkpointer, as exported in langgraph.json."""
    return build().compile(name="outreach_thread")
