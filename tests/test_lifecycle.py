"""The lifecycle module is the one place statuses, waits and events are defined, and the graph agrees with it."""

from __future__ import annotations

import io
import re
import tokenize
import typing
from pathlib import Path

import pytest

from agent.threads.lifecycle import ACCEPTS, WAIT_STATUS, EventType, Status, WaitKind
from graphs.graph import BRANCHING, make_graph
from graphs.nodes.human import human
from graphs.nodes.review import review
from graphs.nodes.schedule import schedule
from graphs.nodes.wait import wait
from graphs.routes import COMPOSER, ROUTES, next_node

ROOT = Path(__file__).resolve().parent.parent
WAITING_NODE = {WaitKind.reply: wait, WaitKind.approval: review, WaitKind.human: human, WaitKind.send_slot: schedule}


def _targets(node: typing.Callable) -> set[str]:
    """The nodes a Command-returning node may go to, read from its return annotation."""
    command = typing.get_type_hints(node)["return"]
    (literal,) = typing.get_args(command)
    return set(typing.get_args(literal))


def test_every_wait_has_a_status_and_a_route_table() -> None:
    assert set(WAIT_STATUS) == set(WaitKind) == set(ACCEPTS) == set(ROUTES)


@pytest.mark.parametrize("kind", list(WaitKind))
def test_the_graph_routes_exactly_the_events_the_runner_accepts(kind: WaitKind) -> None:
    assert set(ROUTES[kind]) == set(ACCEPTS[kind])


@pytest.mark.parametrize("kind", list(WaitKind))
def test_each_accepted_event_leads_to_a_declared_target_of_the_waiting_node(kind: WaitKind) -> None:
    declared = _targets(WAITING_NODE[kind])
    states = [{"draft": {"kind": k}, "step": step} for k in COMPOSER for step in (0, 1)]
    for event in ACCEPTS[kind]:
        reached = {next_node(kind, event, state) for state in states}
        assert reached <= declared, (kind, event, reached - declared)


def test_branching_nodes_are_drawn_with_their_declared_targets() -> None:
    drawn = {(e.source, e.target) for e in make_graph().get_graph().edges}
    for node in BRANCHING:
        for target in _targets(node):
            assert (node.__name__, target) in drawn, (node.__name__, target)
    assert ("human", "human") not in drawn


def test_the_api_status_is_the_lifecycle_status() -> None:
    from agent.threads.models import Status as ApiStatus

    assert ApiStatus is Status


STATUS_IN_SQL = re.compile("'({})'".format("|".join(s.value for s in Status)))
STATUS_VALUES = {s.value for s in Status}


def _status_literals(path: Path) -> list[str]:
    """Status strings in SQL text, or compared against, outside the lifecycle module."""
    found: list[str] = []
    tokens = list(tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline))
    for i, tok in enumerate(tokens):
        if tok.type != tokenize.STRING:
            continue
        if STATUS_IN_SQL.search(tok.string):
            found.append(f"{path.relative_to(ROOT)}:{tok.start[0]} SQL {tok.string[:60]}")
            continue
        value = tok.string.strip("\"'")
        before = tokens[i - 1].string if i else ""
        after = tokens[i + 1].string if i + 1 < len(tokens) else ""
        if value in STATUS_VALUES and (before in ("==", "!=") or after in ("==", "!=")):
            found.append(f"{path.relative_to(ROOT)}:{tok.start[0]} compared {tok.string}")
    return found


def test_status_strings_live_only_in_the_lifecycle_module() -> None:
    files = [p for d in ("agent", "graphs", "runtime", "server") for p in (ROOT / d).rglob("*.py")]
    found = [hit for p in files if p.name != "lifecycle.py" for hit in _status_literals(p)]
    assert found == []


def test_every_event_type_is_accepted_somewhere_or_is_a_control_event() -> None:
    accepted = set().union(*ACCEPTS.values())
    assert set(EventType) - accepted == {EventType.resume, EventType.retry}
