"""How checkpoints are read back and written: only a fixed allow-list of types is rebuilt, a run's latest one is
read once, and what a run writes at its exit commits in one transaction with the run's waiting writes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from graphs.nodes.common import settle, transaction, writes_waiting

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


Statement = tuple[bool, str, Any]
"""A held checkpoint statement: (executemany?, query, parameters)."""
_HELD: ContextVar[list[Statement] | None] = ContextVar("ea_checkpoint_held", default=None)
_RECORDING: ContextVar[bool] = ContextVar("ea_checkpoint_recording", default=False)
_SHARED: ContextVar[AsyncConnection | None] = ContextVar("ea_checkpoint_shared", default=None)


@contextmanager
def reading_on(conn: AsyncConnection) -> Iterator[None]:
    """Inside the block the saver reads on `conn`, in the caller's transaction (the runner's first one)."""
    token = _SHARED.set(conn)
    try:
        yield
    finally:
        _SHARED.reset(token)


@contextmanager
def held() -> Iterator[None]:
    """Inside the block (one run) the saver's writes are held, for `commit_held` to commit in one transaction."""
    token = _HELD.set([])
    try:
        yield
    finally:
        _HELD.reset(token)


async def commit_held(pool: AsyncConnectionPool) -> None:
    """Commit the held checkpoint writes (the checkpoint, its blobs and its pending writes) in one transaction that
    starts with the run's waiting writes; nothing reads them before (the runner holds the thread's lock)."""
    statements = _HELD.get()
    if not statements and not writes_waiting():
        return
    async with transaction(pool) as conn, conn.cursor(binary=True) as cur:
        for many, query, params in statements or ():
            await (cur.executemany(query, params) if many else cur.execute(query, params))
    if statements:
        statements.clear()


class _Recorder:
    """Stands in for the saver's cursor while a write is held: it keeps the statements."""

    def __init__(self, into: list[Statement]) -> None:
        self._into = into

    async def execute(self, query: str, params: Any = None) -> None:
        self._into.append((False, query, params))

    async def executemany(self, query: str, params: Any) -> None:
        self._into.append((True, query, list(params)))


class ReadOnce:
    """Mixed into the Postgres saver: the second read of a thread's latest checkpoint inside `read_once` is the
    first one's result (nothing writes between them: the runner holds the thread's lock); any write forgets it.
    Inside `held` its writes are kept for `commit_held` instead of taking a transaction each."""

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
        """Write a checkpoint, forgetting any remembered read; the run's waiting writes commit before it (or with it,
        when held)."""
        memo = _MEMO.get()
        if memo is not None:
            memo.clear()
        if _HELD.get() is None and writes_waiting():  # never a checkpoint past a node without its writes
            await settle(self.conn)  # type: ignore[attr-defined]
        token = _RECORDING.set(_HELD.get() is not None)  # this call's own task: its cursor records
        try:
            return await super().aput(config, *args, **kw)  # type: ignore[misc]
        finally:
            _RECORDING.reset(token)

    async def aput_writes(self, config: Any, *args: Any, **kw: Any) -> Any:
        """Store a task's writes (held inside `held`)."""
        token = _RECORDING.set(_HELD.get() is not None)
        try:
            return await super().aput_writes(config, *args, **kw)  # type: ignore[misc]
        finally:
            _RECORDING.reset(token)

    @asynccontextmanager
    async def _cursor(self, *, pipeline: bool = False) -> AsyncIterator[Any]:
        """The saver's cursor; the recorder while a write is held; a cursor on the caller's connection in `reading_on`."""
        statements = _HELD.get()
        if statements is not None and _RECORDING.get():
            yield _Recorder(statements)
            return
        shared = _SHARED.get()
        if shared is not None:
            async with shared.cursor(binary=True, row_factory=dict_row) as cur:
                yield cur
            return
        async with super()._cursor(pipeline=pipeline) as cur:  # type: ignore[misc]
            yield cur
