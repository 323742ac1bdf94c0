"""Test support: a real server subprocess, polling, database peeks, and API shortcuts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
from psycopg.rows import dict_row

T = TypeVar("T")
PERSONA = {"name": "Beta invites", "sender_name": "Anna from Acme", "offer": "Acme, a scheduling tool for clinics",
           "goal": "book a 20-minute demo", "call_to_action": "https://cal.example/anna", "signature": "Anna\nAcme"}


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check: Callable[[], T], *, timeout: float = 30, what: str = "condition") -> T:
    """Poll until check() returns something truthy; fail with `what` after timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")


class ServerProcess:
    """`email-assistant serve` in a subprocess, restartable."""

    def __init__(self, env: dict[str, str], *, log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=15)

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, **extra_env: str) -> None:
        """Start and wait until /readyz answers."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "EA_", "GOOGLE_"))}
        env.update(self.env, **extra_env)
        if "OPENAI_API_KEY" in extra_env and extra_env["OPENAI_API_KEY"] == "":
            env.pop("OPENAI_API_KEY")
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--port", str(self.port)],
                                     env=env, stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).parent.parent)
        wait_until(self._ready, timeout=60, what=f"server ready (log: {self.log_path})")

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"server exited with {self.proc.returncode}: {self.log_path.read_text()[-3000:]}")
        try:
            return self.client.get("/readyz").status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        """Stop gracefully (SIGTERM), as an operator would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self, **extra_env: str) -> None:
        """Stop and start again on the same database."""
        self.stop()
        self.start(**extra_env)

    def log(self) -> str:
        """What the server printed."""
        return self.log_path.read_text(errors="replace")

    # API shortcuts
    def create_assistant(self, **fields: Any) -> dict[str, Any]:
        """POST a persona (defaults from PERSONA)."""
        r = self.client.post("/api/assistants", json={**PERSONA, **fields})
        assert r.status_code == 201, r.text
        return r.json()

    def create_thread(self, assistant_id: str, email: str, **fields: Any) -> dict[str, Any]:
        """POST a thread."""
        r = self.client.post("/api/threads", json={"assistant_id": assistant_id, "recipient_email": email, **fields})
        assert r.status_code == 201, r.text
        return r.json()

    def thread(self, thread_id: str) -> dict[str, Any]:
        """GET a thread's detail."""
        r = self.client.get(f"/api/threads/{thread_id}")
        assert r.status_code == 200, r.text
        return r.json()

    def wait_status(self, thread_id: str, status: str, *, timeout: float = 30) -> dict[str, Any]:
        """Poll until the thread has this status."""
        return wait_until(lambda: (t := self.thread(thread_id))["status"] == status and t,
                          timeout=timeout, what=f"thread {thread_id} to be {status}")

    def wait_messages(self, thread_id: str, count: int, *, timeout: float = 30) -> dict[str, Any]:
        """Poll until the thread has at least `count` messages and is not running."""
        return wait_until(lambda: len((t := self.thread(thread_id))["messages"]) >= count and t["status"] != "active" and t,
                          timeout=timeout, what=f"{count} messages in {thread_id}")

    def post(self, path: str, **kw: Any) -> httpx.Response:
        """POST relative to the server."""
        return self.client.post(path, **kw)


def query(database_url: str, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
    """Run SQL on the test database and return rows (autocommit)."""
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else []


def fire_timers(database_url: str, thread_id: str, wait_id: str | None = None) -> int:
    """Make the follow-up timer of the thread's current wait (or of `wait_id`) due now: a controllable clock."""
    if wait_id is None:
        wait_id = query(database_url, "SELECT wait_id FROM threads WHERE id = %s", (thread_id,))[0]["wait_id"]
    rows = query(database_url,
                 "UPDATE procrastinate_jobs SET scheduled_at = now() WHERE status = 'todo'"
                 " AND task_name = 'ea:resume_thread' AND args->>'thread_id' = %s"
                 " AND args->'event'->>'type' = 'followup_due' AND args->'event'->>'wait_id' = %s RETURNING id",
                 (thread_id, wait_id))
    return len(rows)
