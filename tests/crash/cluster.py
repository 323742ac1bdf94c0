"""The crash harness's world: one PostgreSQL, the Google and OpenAI fakes, and killable server/worker processes."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import psutil
import psycopg
from psycopg import conninfo as pg_conninfo

from agent import db
from tests.fakes.gmail import FakeGmail
from tests.fakes.google_oidc import FakeGoogleOIDC
from tests.fakes.openai_fake import FakeOpenAI
from tests.fakes.pubsub_push import PushSigner
from tests.fakes.scripted_model import ScriptedModel
from tests.support import ALICE, CAROL, PUSH_ACCOUNT, PUSH_AUDIENCE, GoogleWorld, free_port, wait_until

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent.parent
READY_SECONDS = 180
"""How long a (re)started server may take to answer /readyz: imports alone take 30 s on a busy shared machine."""
USERS = {ALICE: ("110000000000000000001", "Alice Example"), CAROL: ("110000000000000000002", "Carol Example")}


class Postgres:
    """An embedded PostgreSQL of its own (pgserver), outside every process the harness kills; restartable."""

    def __init__(self) -> None:
        import pgserver

        self.base = Path(tempfile.mkdtemp(prefix="ea-crash-pg-"))
        self.base.chmod(0o755)  # as root, pgserver runs postgres as an unprivileged user
        self.server = pgserver.get_server(self.base / "data", cleanup_mode="delete")
        self.admin = self.server.get_uri()

    def create_database(self) -> str:
        """A fresh database with every migration applied; returns its conninfo."""
        name = f"ea_crash_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = pg_conninfo.make_conninfo(self.admin, dbname=name)
        asyncio.run(db.apply_migrations(url))
        return url

    def stop(self) -> None:
        """Stop the postmaster (fast shutdown: open connections are cut, as in a crash or a failover)."""
        from pgserver._commands import pg_ctl

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata, user=self.server.system_user)

    def start(self) -> None:
        """Start it again on the same data directory and socket."""
        self.server.ensure_postgres_running()

    def close(self) -> None:
        """Stop and delete it."""
        self.server.cleanup()
        shutil.rmtree(self.base, ignore_errors=True)


@dataclass
class Proc:
    """One `email-assistant serve` or `worker` process the harness starts, kills and restarts."""

    role: str  # "server" or "worker-N"
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    port: int | None = None
    popen: subprocess.Popen[bytes] | None = None
    failpoints: str = ""
    starts: int = 0
    deaths: list[dict[str, Any]] = field(default_factory=list)

    def start(self, failpoints: str = "") -> None:
        """Start (armed with EA_FAILPOINTS when given); a server is waited for until /readyz answers."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "EA_", "GOOGLE_", "DATABASE_"))}
        env.update(self.env)
        if failpoints:
            env["EA_FAILPOINTS"] = failpoints
        self.failpoints = failpoints
        self.starts += 1
        with self.log_path.open("ab") as out:
            out.write(f"\n==== start {self.starts} failpoints={failpoints or '-'} ====\n".encode())
            self.popen = subprocess.Popen(self.argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        if self.port is not None:
            wait_until(self._ready, timeout=READY_SECONDS, what=f"{self.role} ready (log: {self.log_path})")

    def _ready(self) -> bool:
        if self.popen is None or self.popen.poll() is not None:
            return True  # died while starting (a failpoint can fire at startup): the monitor restarts it
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    @property
    def pid(self) -> int | None:
        """The live process id, or None."""
        return self.popen.pid if self.popen is not None and self.popen.poll() is None else None

    def alive(self) -> bool:
        """Whether the process is running."""
        return self.pid is not None

    def kill(self) -> bool:
        """SIGKILL it; False when it was not running."""
        if self.popen is None or self.popen.poll() is not None:
            return False
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait()
        return True

    def stop(self) -> None:
        """SIGTERM and wait (SIGKILL after 20 s)."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def pid_of_client(address: tuple[str, int]) -> int | None:
    """The process holding the local end of a loopback TCP connection (the caller of a fake)."""
    for conn in psutil.net_connections(kind="tcp"):
        if conn.laddr and (conn.laddr.ip, conn.laddr.port) == address and conn.pid:
            return conn.pid
    return None


class Cluster:
    """Fakes in this process; PostgreSQL, the server and the workers as separate processes that survive each other."""

    def __init__(self, workdir: Path, *, workers: int, poll_seconds: int = 5, pg: Postgres | None = None,
                 extra_env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.workers_wanted = workers
        self.poll_seconds = poll_seconds
        self.extra_env = extra_env or {}
        self._own_pg = pg is None
        self.pg = pg
        self.model = ScriptedModel()
        self.openai = FakeOpenAI(responder=self.model)
        self.oidc = FakeGoogleOIDC()
        self.gmail: FakeGmail | None = None
        self.world: GoogleWorld | None = None
        self.database_url = ""
        self.server: Proc | None = None
        self.workers: list[Proc] = []
        self.clients: dict[str, httpx.Client] = {}

    def start(self) -> None:
        """Start the fakes, a database, the server (and the workers) and sign both users in."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.pg is None:
            self.pg = Postgres()
        self.database_url = self.pg.create_database()
        self.openai.start()
        self.oidc.start()
        for email, (sub, name) in USERS.items():
            self.oidc.add_user(sub, email, name)
        self.gmail = FakeGmail(self.oidc.email_for_access_token, scope_lookup=self.oidc.scopes_for_access_token).start()
        self.world = GoogleWorld(self.oidc, self.gmail, PushSigner(self.oidc, audience=PUSH_AUDIENCE,
                                                                   service_account_email=PUSH_ACCOUNT))
        env = {
            "DATABASE_URL": self.database_url, "EA_DATA_DIR": str(self.workdir / "data"),
            "OPENAI_API_KEY": "test-key", "OPENAI_BASE_URL": self.openai.base_url, "EA_LLM_MODEL": "fake-model",
            "EA_LLM_MAX_RETRIES": "0", "EA_RETRY_BASE_SECONDS": "1", "EA_JOB_POLL_SECONDS": "0.5",
            **self.world.env(EA_MAIL_POLL_SECONDS=str(self.poll_seconds)),
            "EA_WORKER_IN_PROCESS": "false" if self.workers_wanted else "true", **self.extra_env,
        }
        port = free_port()
        self.server = Proc("server", [sys.executable, "-m", "server.cli", "serve", "--port", str(port)], env,
                           self.workdir / "server.log", port=port)
        self.oidc.add_redirect_uri(f"http://127.0.0.1:{port}/auth/callback")
        self.workers = [Proc(f"worker-{i}", [sys.executable, "-m", "server.cli", "worker"], env,
                             self.workdir / f"worker-{i}.log") for i in range(self.workers_wanted)]
        self.server.start()
        for w in self.workers:
            w.start()
        for email in USERS:
            client = httpx.Client(base_url=self.url, timeout=15)
            self.clients[email] = self.world.sign_in(self._as_support_server(), email, client)
            r = client.patch("/api/settings/sending", json={"spacing_min_seconds": 0, "spacing_max_seconds": 0,
                                                            "daily_cap": 2000, "per_thread_daily_max": 20})
            assert r.status_code == 200, r.text

    @property
    def url(self) -> str:
        """The server's base URL (the same port across restarts)."""
        assert self.server is not None and self.server.port is not None
        return f"http://127.0.0.1:{self.server.port}"

    def _as_support_server(self) -> Any:
        """The little of tests.support.ServerProcess that GoogleWorld.sign_in needs."""
        return SimpleNamespace(url=self.url)

    def procs(self) -> list[Proc]:
        """Every process the harness runs (the server first)."""
        assert self.server is not None
        return [self.server, *self.workers]

    def push(self, email: str, history_id: int | None = None) -> int | None:
        """A Pub/Sub push for the mailbox; the status code, or None when the server is down."""
        assert self.world is not None and self.gmail is not None
        body = self.world.signer.push_body(email, history_id if history_id is not None else self.gmail.history_id(email))
        try:
            return httpx.post(f"{self.url}/webhooks/gmail", json=body, headers=self.world.signer.headers(),
                              timeout=10).status_code
        except httpx.TransportError:
            return None

    def query(self, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
        """SQL on the harness database."""
        from tests.support import query

        return query(self.database_url, sql, params)

    def close(self) -> None:
        """Stop every process and fake; drop PostgreSQL if the cluster started it."""
        for proc in self.procs() if self.server else []:
            proc.stop()
        for client in self.clients.values():
            client.close()
        for fake in (self.gmail, self.oidc):
            if fake is not None:
                fake.stop()
        self.openai.stop()
        if self._own_pg and self.pg is not None:
            self.pg.close()

    def wait_quiet(self, *, timeout: float, done: Any) -> float:
        """Poll `done()` until it holds or timeout passes; returns the seconds waited."""
        started = time.monotonic()
        while time.monotonic() - started < timeout and not done():
            time.sleep(1)
        return time.monotonic() - started
