"""A run's waiting writes: they join its next transaction, survive a rolled-back one, and precede its checkpoint."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from graphs.nodes.common import connect, later, run_scope, writes_waiting
from runtime.checkpoints import ReadOnce
from tests.support import query


def _written(database_url: str) -> list[int]:
    return [r["n"] for r in query(database_url, "SELECT n FROM probe_writes ORDER BY n")]


def _write(n: int) -> Any:
    async def write(conn: psycopg.AsyncConnection) -> None:
        await conn.execute("INSERT INTO probe_writes (n) VALUES (%s) ON CONFLICT DO NOTHING", (n,))
    return write


@pytest.fixture
async def runtime(database_url: str) -> Any:
    query(database_url, "CREATE TABLE probe_writes (n int PRIMARY KEY)")
    async with AsyncConnectionPool(database_url, min_size=1, max_size=2, open=False) as pool:
        yield SimpleNamespace(context=SimpleNamespace(pool=pool))


async def test_a_waiting_write_commits_with_the_next_transaction(runtime: Any, database_url: str) -> None:
    with run_scope():
        await later(runtime, _write(1))
        assert _written(database_url) == [] and writes_waiting()
        async with connect(runtime) as conn:
            cur = await conn.execute("SELECT count(*) FROM probe_writes")
            assert (await cur.fetchone())[0] == 1, "the waiting write runs first, in this transaction"
        assert _written(database_url) == [1] and not writes_waiting()
    await later(runtime, _write(2))
    assert _written(database_url) == [1, 2], "outside a run a write is made at once"


async def test_a_rolled_back_transaction_keeps_the_write_waiting(runtime: Any, database_url: str) -> None:
    with run_scope():
        await later(runtime, _write(3))
        with pytest.raises(RuntimeError):
            async with connect(runtime):
                raise RuntimeError("the node failed inside its transaction")
        assert _written(database_url) == [] and writes_waiting(), "rolled back with it, and still waiting"
        async with connect(runtime):
            pass
        assert _written(database_url) == [3]


class Store:
    """The database side of a saver: records what was committed when the checkpoint is written."""

    def __init__(self, pool: AsyncConnectionPool, database_url: str) -> None:
        self.conn, self.url = pool, database_url
        self.seen_at_put: list[int] | None = None

    async def aput(self, config: Any, *args: Any, **kw: Any) -> Any:
        self.seen_at_put = _written(self.url)
        return config


class Saver(ReadOnce, Store):
    pass


async def test_the_checkpoint_is_written_after_the_waiting_writes(runtime: Any, database_url: str) -> None:
    saver = Saver(runtime.context.pool, database_url)
    with run_scope():
        await later(runtime, _write(4))
        await saver.aput({"configurable": {"thread_id": "t"}}, {}, {}, {})
    assert saver.seen_at_put == [4], "a checkpoint past a node never lands without that node's writes"


async def test_held_checkpoint_writes_commit_together_after_the_run(runtime: Any, database_url: str) -> None:
    from langgraph.checkpoint.base import empty_checkpoint

    from runtime.checkpoints import commit_held, held
    from runtime.startup import pooled_saver

    saver, pool = pooled_saver(runtime.context.pool), runtime.context.pool
    config = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    checkpoint = {**empty_checkpoint(), "channel_values": {"draft": {"text": "hi"}, "step": 1},
                  "channel_versions": {"draft": "1", "step": "1"}}
    with run_scope(), held():
        await later(runtime, _write(5))
        saved = await saver.aput(config, checkpoint, {"source": "loop", "step": 1}, {"draft": "1", "step": "1"})
        await saver.aput_writes(saved, [("__interrupt__", "waiting")], "task-1")
        assert query(database_url, "SELECT count(*) AS n FROM checkpoints")[0]["n"] == 0, "held until the run ends"
        assert _written(database_url) == []
        await commit_held(pool)
    assert _written(database_url) == [5]
    found = await saver.aget_tuple(config)
    assert found.checkpoint["id"] == checkpoint["id"] and found.checkpoint["channel_values"]["draft"] == {"text": "hi"}
    assert [(w[1], w[2]) for w in found.pending_writes] == [("__interrupt__", "waiting")]
    await saver.aput(config, {**checkpoint, "id": empty_checkpoint()["id"]}, {"source": "loop", "step": 2}, {})
    assert query(database_url, "SELECT count(*) AS n FROM checkpoints")[0]["n"] == 2, "outside a run: written at once"
