"""A pooled connection the server closed is replaced at checkout, without a query per checkout."""

from __future__ import annotations

import psycopg

from agent import db
from tests.support import query, wait_until


async def test_a_connection_the_server_closed_is_replaced(database_url: str) -> None:
    async with db.open_pool(database_url, min_size=1, max_size=1) as pool:
        async with pool.connection() as conn:
            first = (await (await conn.execute("SELECT pg_backend_pid() AS pid")).fetchone())["pid"]
        query(database_url, "SELECT pg_terminate_backend(%s)", (first,))
        wait_until(lambda: not query(database_url, "SELECT 1 FROM pg_stat_activity WHERE pid = %s", (first,)),
                   what="the backend to exit")
        async with pool.connection() as conn:
            second = (await (await conn.execute("SELECT pg_backend_pid() AS pid")).fetchone())["pid"]
    assert second != first


async def test_a_live_connection_passes_the_check_without_a_query(database_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        await db.check_alive(conn)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        await conn.close()
        try:
            await db.check_alive(conn)
        except psycopg.OperationalError:
            return
    raise AssertionError("a closed connection passed the check")
