"""A run reads its thread's latest checkpoint once: the runner's look at the state and the run share the read."""

from __future__ import annotations

from typing import Any

from runtime.checkpoints import ReadOnce, read_once


class Store:
    """Counts the reads that reach the database side of a saver."""

    def __init__(self) -> None:
        self.reads = 0

    async def aget_tuple(self, config: Any) -> Any:
        self.reads += 1
        return ("checkpoint", config["configurable"]["thread_id"], self.reads)

    async def aput(self, config: Any, *args: Any, **kw: Any) -> Any:
        return config


class Saver(ReadOnce, Store):
    pass


def _config(thread: str, **extra: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread, **extra}}


async def test_the_second_read_in_a_block_is_the_first_ones_result() -> None:
    saver = Saver()
    with read_once():
        first = await saver.aget_tuple(_config("t"))
        assert await saver.aget_tuple(_config("t")) is first
        assert saver.reads == 1
        await saver.aget_tuple(_config("u"))
        assert saver.reads == 2, "another thread is read on its own"
        await saver.aget_tuple(_config("t"))
        assert saver.reads == 3, "the memo serves one repeat only"


async def test_a_write_or_a_pinned_read_goes_to_the_database() -> None:
    saver = Saver()
    with read_once():
        await saver.aget_tuple(_config("t"))
        await saver.aput(_config("t"), {}, {}, {})
        await saver.aget_tuple(_config("t"))
        assert saver.reads == 2, "a write forgets the remembered read"
        await saver.aget_tuple(_config("t", checkpoint_id="1"))
        assert saver.reads == 3
    await saver.aget_tuple(_config("t"))
    await saver.aget_tuple(_config("t"))
    assert saver.reads == 5, "outside the block every read reaches the database"
