"""How checkpoints are read back: only a fixed allow-list of types is rebuilt, and a run's latest one is read once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from graphs.nodes.common import settle, writes_waiting

if TYPE_CHECKING:
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer


def strict_serializer() -> JsonPlusSerializer:
    """LangGraph's serializer in strict mode (as LANGGRAPH_STRICT_MSGPACK=true): a tampered checkpoint cannot make
    the worker import and call arbitrary code; our state holds only plain data and LangGraph's own types."""
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer  # with the graph, not at import

    return JsonPlusSerializer(allowed_msgpack_modules=None)


_MEMO: ContextVar[dict[str, Any] | None] = ContextVar("ea_checkpoint_memo", default=None)


@contextmanager
def read_once() -> Iterator[None]:
    """Inside the block a thread's latest checkpoint is read once: the runner's look and the run share that read."""
    token = _MEMO.set({})
    try:
        yield
    finally:
        _MEMO.reset(token)


class ReadOnce:
    """Mixed into the Postgres saver: the second read of a thread's latest checkpoint inside `read_once` is the
    first one's result (nothing writes between them: the runner holds the thread's lock); any write forgets it."""

    async def aget_tuple(self, config: Any) -> Any:
        """The latest checkpoint, from the memo when the block already read it."""
        memo, conf = _MEMO.get(), config.get("configurable", {})
        if memo is None or conf.get("checkpoint_id") or conf.get("checkpoint_ns", ""):
            return await super().aget_tuple(config)  # type: ignore[misc]
        key = str(conf["thread_id"])
        if key in memo:
            return memo.pop(key)
        memo[key] = found = await super().aget_tuple(config)  # type: ignore[misc]
        return found

    async def aput(self, config: Any, *args: Any, **kw: Any) -> Any:
        """Write a checkpoint, forgetting any remembered read; the run's waiting writes commit before it."""
        memo = _MEMO.get()
        if memo is not None:
            memo.clear()
        if writes_waiting():  # never a checkpoint past a node without its writes
            await settle(self.conn)  # type: ignore[attr-defined]
        return await super().aput(config, *args, **kw)  # type: ignore[misc]
