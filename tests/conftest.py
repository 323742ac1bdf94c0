"""Shared fixtures: a real PostgreSQL (embedded, or DATABASE_URL), a fresh database per test, the model fake."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import conninfo as pg_conninfo

from agent import db
from tests.fakes.openai_fake import FakeOpenAI
from tests.fakes.scripted_model import ScriptedModel
from tests.support import ServerProcess

TEMPLATE = "ea_test_template"


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[str]:
    """A superuser conninfo: DATABASE_URL when set, else an embedded server for this session."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    import pgserver

    # Its own folder, not pytest's 0700 tmp tree: as root, pgserver runs postgres as an unprivileged user.
    base = Path(tempfile.mkdtemp(prefix="ea-test-pg-"))
    base.chmod(0o755)
    server = pgserver.get_server(base / "data", cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(base, ignore_errors=True)


def _url(admin: str, dbname: str) -> str:
    return pg_conninfo.make_conninfo(admin, dbname=dbname)


@pytest.fixture(scope="session")
def template_db(pg_admin: str) -> str:
    """A database with every migration applied, cloned for each test."""
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{TEMPLATE}"')
    asyncio.run(db.apply_migrations(_url(pg_admin, TEMPLATE)))
    return TEMPLATE


@pytest.fixture
def database_url(pg_admin: str, template_db: str) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    name = f"ea_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    yield _url(pg_admin, name)
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def empty_database_url(pg_admin: str) -> Iterator[str]:
    """A database with nothing in it."""
    name = f"ea_empty_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield _url(pg_admin, name)
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def model() -> Iterator[tuple[FakeOpenAI, ScriptedModel]]:
    """The OpenAI wire fake answering with the scripted model."""
    script = ScriptedModel()
    with FakeOpenAI(responder=script) as fake:
        yield fake, script


@pytest.fixture
def server_env(database_url: str, model: tuple[FakeOpenAI, ScriptedModel], tmp_path: Path) -> dict[str, str]:
    """Environment for a server subprocess on the test database with the model fake."""
    fake, _ = model
    return {
        "DATABASE_URL": database_url, "EA_DATA_DIR": str(tmp_path / "data"), "OPENAI_API_KEY": "test-key",
        "OPENAI_BASE_URL": fake.base_url, "EA_LLM_MODEL": "fake-model", "EA_LLM_MAX_RETRIES": "0",
        "EA_RETRY_BASE_SECONDS": "1", "EA_JOB_POLL_SECONDS": "0.5",
    }


@pytest.fixture
def server(server_env: dict[str, str], tmp_path: Path) -> Iterator[ServerProcess]:
    """A real `email-assistant serve` process (with its in-process worker)."""
    proc = ServerProcess(server_env, log_path=tmp_path / "server.log")
    proc.start()
    yield proc
    proc.stop()
