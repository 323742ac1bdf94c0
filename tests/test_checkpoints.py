"""Checkpoints are read back strictly: a tampered row cannot rebuild an arbitrary Python object."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.types import Command, Interrupt

from agent.config import Settings
from runtime.checkpoints import strict_serializer
from runtime.startup import open_services


@dataclasses.dataclass
class Planted:
    """A type an attacker with database access might plant in a checkpoint."""

    command: str


def test_an_unlisted_type_is_not_rebuilt() -> None:
    planted = JsonPlusSerializer().dumps_typed({"x": Planted("rm -rf /")})
    assert JsonPlusSerializer().loads_typed(planted) == {"x": Planted("rm -rf /")}, "the permissive default would"
    assert strict_serializer().loads_typed(planted) == {"x": {"command": "rm -rf /"}}


def test_the_graphs_own_types_still_load() -> None:
    data = {"i": Interrupt(value={"wait_id": "reply-1"}, id="i1"), "c": Command(resume={"type": "reply"}),
            "state": {"step": 2, "draft": {"kind": "first", "text": "Hi"}}}
    back = strict_serializer().loads_typed(strict_serializer().dumps_typed(data))
    assert back["i"] == data["i"] and back["state"] == data["state"]
    assert isinstance(back["c"], Command) and back["c"].resume == {"type": "reply"}


async def test_the_running_services_read_checkpoints_strictly(database_url: str, tmp_path: Path) -> None:
    settings = Settings(DATABASE_URL=database_url, EA_DATA_DIR=tmp_path)
    planted = JsonPlusSerializer().dumps_typed({"x": Planted("rm -rf /")})
    async with open_services(settings) as svc:
        assert svc.graph.checkpointer.serde.loads_typed(planted) == {"x": {"command": "rm -rf /"}}
