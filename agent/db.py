"""PostgreSQL: the embedded server, the connection pool and the migrations."""

from __future__ import annotations

import asyncio
import logging
import re
import select
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from agent.config import Settings

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS_DIR = ROOT / "migrations"
MIGRATION_LOCK_ID = 7_301_447_001  # pg_advisory_lock key shared by every process that migrates
DATABASE_NAME = "email_assistant"


class EmbeddedPostgres:
    """A pgserver-managed PostgreSQL under EA_DATA_DIR, stopped when the last handle closes."""

    def __init__(self, data_dir: Path) -> None:
        self.pgdata = data_dir / "pgdata"
        self._server: Any = None

    def start(self) -> str:
        """Start (or join) the embedded server; return a conninfo for our database."""
        import pgserver  # imported here: starting Postgres is a runtime decision, not an import one

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._server = pgserver.get_server(self.pgdata, cleanup_mode="stop")
        admin_uri = self._server.get_uri()
        with psycopg.connect(admin_uri, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
        log.info("embedded PostgreSQL running with data in %s", self.pgdata)
        return self._server.get_uri(DATABASE_NAME)

    def stop(self) -> None:
        """Release our handle; the server stops when no process uses it."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None


def resolve_conninfo(settings: Settings) -> tuple[str, EmbeddedPostgres | None]:
    """DATABASE_URL when set, otherwise a started embedded server."""
    if settings.database_url:
        return settings.database_url, None
    embedded = EmbeddedPostgres(settings.data_dir)
    return embedded.start(), embedded


def open_pool(conninfo: str, *, min_size: int = 1, max_size: int = 10) -> AsyncConnectionPool:
    """An unopened async pool returning dict rows; the caller opens and closes it."""
    return AsyncConnectionPool(
        conninfo,
        min_size=min_size,
        max_size=max_size,
        kwargs={"row_factory": dict_row, "autocommit": False},
        open=False,
        name="email-assistant",
        check=check_alive,  # a connection the server dropped (restart) is replaced
    )


async def check_alive(conn: psycopg.AsyncConnection[Any]) -> None:
    """Raise when the server has closed this connection (e.g. a restart); a round trip only if it said something."""
    # The pool's stock check sends an empty query on every checkout: a round trip and a commit each time, which
    # doubled the transactions of a reply. An idle connection has nothing to read; a server that closed it left its
    # goodbye (and the EOF) on the socket, so only then is the stock check run, and it raises.
    if conn.closed or conn.broken:
        raise psycopg.OperationalError("the connection is closed")
    readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    if readable:
        await AsyncConnectionPool.check_connection(conn)


def checked_pool(**kwargs: Any) -> AsyncConnectionPool:
    """A pool whose checkout check is `check_alive` (procrastinate's `pool_factory`: its own check is the stock one)."""
    return AsyncConnectionPool(**{**kwargs, "check": check_alive})


class SessionLocks:
    """Advisory locks for many keys on one dedicated connection per process: a running job holds a lock, not a
    connection, so the process needs one connection for locks at any concurrency.

    Within the process an asyncio lock per key queues the holders (a session lock is re-entrant, so Postgres alone
    would let two jobs of this process in); across processes `pg_try_advisory_lock` decides, retried with backoff.
    If the process dies its connection closes and Postgres releases every lock it held, as with a lock per job.
    """

    def __init__(self, conninfo: str, *, retry_seconds: float = 0.02, max_retry_seconds: float = 0.5) -> None:
        self._conninfo = conninfo
        self._retry, self._max_retry = retry_seconds, max_retry_seconds
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._io = asyncio.Lock()  # one statement at a time on the shared connection
        self._local: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}
        self._held: set[str] = set()

    async def open(self) -> None:
        """Connect (autocommit: the connection never sits idle in a transaction)."""
        self._conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)

    async def close(self) -> None:
        """Disconnect; Postgres releases whatever is still held."""
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def __aenter__(self) -> SessionLocks:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(self, sql: str, key: str) -> bool:
        """Run one lock statement on the shared connection, reconnecting (and re-taking held keys) if it broke."""
        async with self._io:
            if self._conn is None or self._conn.closed or self._conn.broken:
                await self._reconnect()
            assert self._conn is not None
            try:
                cur = await self._conn.execute(sql, (key,))
            except psycopg.OperationalError:
                await self._reconnect()
                cur = await self._conn.execute(sql, (key,))
            row = await cur.fetchone()
            return bool(row and row[0])

    async def _reconnect(self) -> None:
        log.warning("lock connection lost: reconnecting and taking %d held lock(s) again", len(self._held))
        if self._conn is not None:
            await self._conn.close()
        self._conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        for key in list(self._held):
            cur = await self._conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (key,))
            row = await cur.fetchone()
            if not (row and row[0]):
                log.error("lock %s was taken by another process while our connection was down", key)

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """Hold the advisory lock on `key`, waiting for it."""
        self._users[key] = self._users.get(key, 0) + 1
        local = self._local.setdefault(key, asyncio.Lock())
        try:
            async with local:
                delay = self._retry
                while not await self._call("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", key):
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self._max_retry)
                self._held.add(key)
                try:
                    yield
                finally:
                    self._held.discard(key)
                    if not await self._call("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", key):
                        log.error("lock %s was not held at release", key)
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key], self._local[key]


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[tuple[int, str, Path]]:
    """The numbered SQL files, in order; a gap or duplicate number is an error."""
    found: list[tuple[int, str, Path]] = []
    for path in directory.glob("*.sql"):
        match = re.fullmatch(r"(\d+)_([\w-]+)\.sql", path.name)
        if not match:
            raise RuntimeError(f"migration file {path.name} must be named NNN_name.sql")
        found.append((int(match.group(1)), match.group(2), path))
    found.sort()
    numbers = [n for n, _, _ in found]
    if numbers != list(range(1, len(numbers) + 1)):
        raise RuntimeError(f"migrations must be numbered 1..N without gaps, found {numbers}")
    return found


async def apply_migrations(conninfo: str, directory: Path = MIGRATIONS_DIR) -> list[int]:
    """Apply pending project migrations, procrastinate's schema and LangGraph's tables, under a lock."""
    files = migration_files(directory)
    applied: list[int] = []
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        if await _up_to_date(conn, files):
            return applied  # a restart: one query, no lock, and LangGraph is not imported
        await conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_ID,))
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_components ("
                " name text PRIMARY KEY, version text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cur = await conn.execute("SELECT version FROM schema_migrations")
            done = {row[0] for row in await cur.fetchall()}
            for number, name, path in files:
                if number in done:
                    continue
                async with conn.transaction():
                    await conn.execute(path.read_text(encoding="utf-8"))
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (number, name)
                    )
                log.info("applied migration %03d_%s", number, name)
                applied.append(number)
            await _apply_procrastinate_schema(conn, conninfo)
            await conn.execute(JOBS_BY_THREAD_INDEX)
            await _apply_checkpointer_schema(conninfo)
            await conn.execute(REDUNDANT_CHECKPOINT_INDEXES)
            await conn.execute(
                "INSERT INTO schema_components (name, version) VALUES (%s, %s)"
                " ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version, applied_at = now()",
                (CHECKPOINTER, _installed(CHECKPOINTER)),
            )
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_ID,))
    return applied


REDUNDANT_CHECKPOINT_INDEXES = ("DROP INDEX IF EXISTS checkpoints_thread_id_idx, checkpoint_blobs_thread_id_idx,"
                                " checkpoint_writes_thread_id_idx")
"""LangGraph's indexes on thread_id alone: each table's primary key starts with thread_id and serves the same reads
(dropped after its setup(), which creates its tables after the numbered migrations)."""

CHECKPOINTER = "langgraph-checkpoint-postgres"
"""The package whose setup() created the checkpoint tables: run again only when its installed version changes."""


def _installed(package: str) -> str:
    from importlib.metadata import version

    return version(package)


async def _up_to_date(conn: psycopg.AsyncConnection, files: list[tuple[int, str, Path]]) -> bool:
    """Every numbered migration, procrastinate's schema with our index, and this checkpointer's tables are there."""
    try:
        cur = await conn.execute(
            "SELECT (SELECT coalesce(array_agg(version ORDER BY version), '{}') FROM schema_migrations),"
            " to_regclass('procrastinate_jobs') IS NOT NULL AND to_regclass('procrastinate_jobs_thread_idx') IS NOT NULL,"
            " (SELECT version FROM schema_components WHERE name = %s)", (CHECKPOINTER,))
    except psycopg.errors.UndefinedTable:  # a database from before schema_components (or an empty one)
        return False
    row = await cur.fetchone()
    assert row is not None
    versions, jobs_schema, checkpointer = row
    return versions == [n for n, _, _ in files] and jobs_schema and checkpointer == _installed(CHECKPOINTER)


JOBS_BY_THREAD_INDEX = ("CREATE INDEX IF NOT EXISTS procrastinate_jobs_thread_idx"
                        " ON procrastinate_jobs ((args->>'thread_id'))")
"""A closed thread's jobs are found (and pruned) through this index; created after procrastinate's own schema,
which is installed after the numbered migrations."""


async def _apply_procrastinate_schema(conn: psycopg.AsyncConnection, conninfo: str) -> None:
    """Install procrastinate's schema once (its own upgrades ship as its migrations)."""
    cur = await conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL")
    row = await cur.fetchone()
    if row and row[0]:
        return
    import procrastinate  # the schema needs no tasks: a bare app, so storage never imports the runtime

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo, min_size=1, max_size=1))
    async with app.open_async():
        await app.schema_manager.apply_schema_async()
    log.info("installed procrastinate schema")


async def _apply_checkpointer_schema(conninfo: str) -> None:
    """Create or upgrade LangGraph's checkpoint tables (idempotent)."""
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    async with AsyncPostgresSaver.from_conn_string(conninfo) as saver:
        await saver.setup()
