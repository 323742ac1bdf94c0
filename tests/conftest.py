"""Shared fixtures: a real PostgreSQL (embedded, or DATABASE_URL), a fresh database per test, the model fake."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import conninfo as pg_conninfo

from agent import db
from agent.config import Settings
from tests.fakes.gmail import FakeGmail
from tests.fakes.google_oidc import FakeGoogleOIDC
from tests.fakes.openai_fake import FakeOpenAI
from tests.fakes.pubsub_push import PushSigner
from tests.fakes.scripted_model import ScriptedModel
from tests.support import ALICE, CAROL, PUSH_ACCOUNT, PUSH_AUDIENCE, GoogleWorld, ServerProcess

TEMPLATE = "ea_test_template_" + os.environ.get("PYTEST_XDIST_WORKER", "main")  # one per xdist worker


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


@contextmanager
def _scratch_database(admin: str, *, template: str | None = None) -> Iterator[str]:
    name = f"ea_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    try:
        yield _url(admin, name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(pg_admin: str, template_db: str) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    with _scratch_database(pg_admin, template=template_db) as url:
        yield url


@pytest.fixture
def empty_database_url(pg_admin: str) -> Iterator[str]:
    """A database with nothing in it."""
    with _scratch_database(pg_admin) as url:
        yield url


@pytest.fixture
def model() -> Iterator[tuple[FakeOpenAI, ScriptedModel]]:
    """The OpenAI wire fake answering with the scripted model."""
    script = ScriptedModel()
    with FakeOpenAI(responder=script) as fake:
        yield fake, script


@pytest.fixture
def services_settings(database_url: str, model: tuple[FakeOpenAI, ScriptedModel], tmp_path: Path) -> Settings:
    """Settings for services opened inside the test process (runtime.startup.open_services) on the test database."""
    fake, _ = model
    return Settings(DATABASE_URL=database_url, OPENAI_API_KEY="k", OPENAI_BASE_URL=fake.base_url,
                    EA_LLM_MAX_RETRIES=0, EA_DATA_DIR=tmp_path)


@pytest.fixture
def server_env(database_url: str, model: tuple[FakeOpenAI, ScriptedModel], tmp_path: Path) -> dict[str, str]:
    """Environment for a server subprocess on the test database with the model fake."""
    fake, _ = model
    return {
        "DATABASE_URL": database_url, "EA_DATA_DIR": str(tmp_path / "data"), "OPENAI_API_KEY": "test-key",
        "OPENAI_BASE_URL": fake.base_url, "EA_LLM_MODEL": "fake-model", "EA_LLM_MAX_RETRIES": "0",
        "EA_RETRY_BASE_SECONDS": "1", "EA_JOB_POLL_SECONDS": "0.5",
        "EA_CHECK_DELIVERABILITY": "false",  # no DNS from tests; test_deliverability turns it on with a fake
    }


@pytest.fixture
def server(server_env: dict[str, str], tmp_path: Path) -> Iterator[ServerProcess]:
    """A real `email-assistant serve` process (with its in-process worker)."""
    proc = ServerProcess(server_env, log_path=tmp_path / "server.log")
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def google() -> Iterator[GoogleWorld]:
    """The Google fakes (OIDC + token endpoint, Gmail, Pub/Sub push signer) on loopback."""
    with FakeGoogleOIDC() as oidc, FakeGmail(oidc.email_for_access_token,
                                            scope_lookup=oidc.scopes_for_access_token) as gmail:
        oidc.add_user("110000000000000000001", ALICE, "Alice Example")
        oidc.add_user("110000000000000000002", CAROL, "Carol Example")
        yield GoogleWorld(oidc, gmail, PushSigner(oidc, audience=PUSH_AUDIENCE, service_account_email=PUSH_ACCOUNT))


@pytest.fixture
def google_server(google: GoogleWorld, server_env: dict[str, str], tmp_path: Path) -> Iterator[ServerProcess]:
    """A real server in Google mode against the fakes (push on, polling off)."""
    proc = google.server(server_env, tmp_path / "server.log")
    yield proc
    proc.stop()


PUBSUB_EMULATOR = Path("/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator")


@pytest.fixture(scope="session")
def pubsub_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Google's Pub/Sub emulator on a free loopback port; yields host:port (also set as PUBSUB_EMULATOR_HOST here)."""
    import signal
    import subprocess

    from tests.support import free_port, wait_until

    assert PUBSUB_EMULATOR.exists(), f"the Pub/Sub emulator is required at {PUBSUB_EMULATOR}"
    host = f"127.0.0.1:{free_port()}"
    log_path = tmp_path_factory.mktemp("pubsub") / "emulator.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([str(PUBSUB_EMULATOR), "--host=127.0.0.1", f"--port={host.split(':')[1]}"],
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until(lambda: proc.poll() is None and "Server started" in log_path.read_text(errors="replace")
                   or (proc.poll() is not None and (_ for _ in ()).throw(AssertionError(log_path.read_text()))),
                   timeout=60, what="the Pub/Sub emulator")
        previous = os.environ.get("PUBSUB_EMULATOR_HOST")
        os.environ["PUBSUB_EMULATOR_HOST"] = host
        yield host
        if previous is None:
            os.environ.pop("PUBSUB_EMULATOR_HOST", None)
        else:
            os.environ["PUBSUB_EMULATOR_HOST"] = previous
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
