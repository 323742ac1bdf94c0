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
from uuid import UUID

import httpx
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from agent.assistants import service as assistants
from agent.assistants.models import AssistantFields
from agent.threads import service as threads
from agent.threads.models import ThreadCreate

T = TypeVar("T")
PERSONA = {"name": "Beta invites", "sender_name": "Anna from Acme", "offer": "Acme, a scheduling tool for clinics",
           "goal": "book a 20-minute demo", "call_to_action": "https://cal.example/anna", "signature": "Anna\nAcme"}


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


ALWAYS_OPEN = {"send_days": [1, 2, 3, 4, 5, 6, 7], "send_start": "00:00", "send_end": "00:00"}


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


ROOT = Path(__file__).parent.parent


def clean_env(env: dict[str, str], **extra: str) -> dict[str, str]:
    """The test's environment without the developer's EA_/OPENAI_/GOOGLE_ settings, plus env and extra."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "EA_", "GOOGLE_"))}
    return {**base, **env, **extra}


def stop_process(proc: subprocess.Popen[bytes] | None, *, timeout: float = 20) -> None:
    """SIGTERM and wait, as an operator would; SIGKILL if it has not stopped after timeout."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class CliProcess:
    """An `email-assistant <command>` subprocess of the tests, printing into its own log file."""

    name = "process"

    def __init__(self, env: dict[str, str], *, log_path: Path) -> None:
        self.env, self.log_path = env, log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def spawn(self, args: list[str], env: dict[str, str]) -> None:
        """Start `python -m server.cli *args` with this environment, stdout and stderr into the log."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "server.cli", *args], env=env, stdout=log,
                                         stderr=subprocess.STDOUT, cwd=ROOT)

    def check_running(self) -> None:
        """Fail with the end of the log when the process has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}: {self.log()[-3000:]}")

    def stop(self) -> None:
        """Stop gracefully (SIGTERM), as an operator would."""
        stop_process(self.proc)
        self.proc = None

    def log(self) -> str:
        """What the process printed."""
        return self.log_path.read_text(errors="replace")


class ServerProcess(CliProcess):
    """`email-assistant serve` in a subprocess, restartable."""

    name = "server"

    def __init__(self, env: dict[str, str], *, log_path: Path) -> None:
        super().__init__(env, log_path=log_path)
        self.port = free_port()
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=15)

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, ready_seconds: float = 60, **extra_env: str) -> None:
        """Start and wait until /readyz answers; OPENAI_API_KEY="" starts it without a model key."""
        env = clean_env(self.env, **extra_env)
        if extra_env.get("OPENAI_API_KEY") == "":
            env.pop("OPENAI_API_KEY")
        self.spawn(["serve", "--port", str(self.port)], env)
        wait_until(self._ready, timeout=ready_seconds, what=f"server ready (log: {self.log_path})")

    def _ready(self) -> bool:
        self.check_running()
        try:
            return self.client.get("/readyz").status_code == 200
        except httpx.TransportError:
            return False

    def restart(self, **extra_env: str) -> None:
        """Stop and start again on the same database."""
        self.stop()
        self.start(**extra_env)

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


async def new_thread(svc: Any, email: str, *, persona: dict[str, Any] = PERSONA) -> UUID:
    """A sandbox thread of the local user to `email`, under a new persona, created directly in the database."""
    async with svc.pool.connection() as conn:
        created = await assistants.create(conn, user_id=svc.local_user_id, fields=AssistantFields(**persona))
        row = await threads.create(conn, user_id=svc.local_user_id, transport="sandbox",
                                   data=ThreadCreate(assistant_id=created.id, recipient_email=email))
    return row.id


def query(database_url: str, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
    """Run SQL on the test database and return rows (autocommit)."""
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else []


def fire_timers(database_url: str, thread_id: str, wait_id: str | None = None) -> int:
    """Make the follow-up of the thread's current wait (or of `wait_id`) due now: a controllable clock.

    The timer tick (runtime/timers.py, every 5 s) then fires it; returns 1 when the thread waits with that timer.
    """
    if wait_id is None:
        wait_id = query(database_url, "SELECT wait_id FROM threads WHERE id = %s", (thread_id,))[0]["wait_id"]
    rows = query(database_url,
                 "UPDATE threads SET follow_up_due_at = now() WHERE id = %s AND wait_id = %s"
                 " AND follow_up_due_at IS NOT NULL RETURNING id", (thread_id, wait_id))
    return len(rows)


def queue_follow_up(database_url: str, thread_id: str, wait_id: str) -> None:
    """Queue the followup_due resume of `wait_id` as the timer tick does (a tick that raced the wait's end)."""
    query(database_url, "INSERT INTO procrastinate_jobs (queue_name, task_name, args, status)"
          " VALUES ('default', 'ea:resume_thread', %s, 'todo')",
          (Jsonb({"thread_id": thread_id, "event": {"type": "followup_due", "wait_id": wait_id}}),))


# ---- Google (sign-in, Gmail, Pub/Sub) against the local fakes ------------------------------------------------------
PUSH_AUDIENCE = "https://assistant.test/webhooks/gmail"
PUSH_ACCOUNT = "gmail-push@test-project.iam.gserviceaccount.com"
PUBSUB_TOPIC = "projects/test-project/topics/gmail"
ALICE = "alice@example.com"
CAROL = "carol@example.com"


class GoogleWorld:
    """The Google fakes a test talks to (OIDC, Gmail, the push signer) and the server settings that point at them."""

    def __init__(self, oidc: Any, gmail: Any, signer: Any) -> None:
        self.oidc, self.gmail, self.signer = oidc, gmail, signer
        from cryptography.fernet import Fernet

        self.secret_key = Fernet.generate_key().decode()

    def env(self, **extra: str) -> dict[str, str]:
        """Server environment for Google mode (push on, polling effectively off unless overridden)."""
        env = {
            "GOOGLE_CLIENT_ID": self.oidc.client_id, "GOOGLE_CLIENT_SECRET": self.oidc.client_secret,
            "EA_SECRET_KEY": self.secret_key, "EA_GOOGLE_DISCOVERY_URL": self.oidc.discovery_url,
            "EA_GMAIL_API_URL": self.gmail.base_url, "EA_GOOGLE_CERTS_URL": self.oidc.certs_url,
            "EA_PUBSUB_TOPIC": PUBSUB_TOPIC, "EA_PUBSUB_PUSH_AUDIENCE": PUSH_AUDIENCE,
            "EA_PUBSUB_PUSH_SERVICE_ACCOUNT": PUSH_ACCOUNT, "EA_MAIL_POLL_SECONDS": "3600",
            "EA_GOOGLE_RETRY_BASE_SECONDS": "0.02",
        }
        env.update(extra)
        return {k: v for k, v in env.items() if v != ""}

    def server(self, base_env: dict[str, str], log_path: Path, **extra: str) -> ServerProcess:
        """A started server in Google mode whose OAuth callback the fake accepts."""
        proc = ServerProcess({**base_env, **self.env(**extra)}, log_path=log_path)
        self.oidc.add_redirect_uri(f"{proc.url}/auth/callback")
        proc.start()
        return proc

    def sign_in(self, server: ServerProcess, email: str, client: httpx.Client | None = None) -> httpx.Client:
        """Sign in like a browser (follow /login → Google → /auth/callback); returns the client holding the cookie.

        The client then sends our Origin, as a browser does from our pages (tests/test_csrf.py drops it).
        """
        client = client or httpx.Client(base_url=server.url, timeout=15)
        self.oidc.next_login(email)
        start = client.get("/login")
        assert start.status_code == 302, start.text
        consent = httpx.get(start.headers["location"], timeout=15)
        assert consent.status_code == 302, consent.text
        back = client.get(consent.headers["location"])
        assert back.status_code == 303, back.text
        client.headers["Origin"] = server.url  # as a browser on our pages: API writes need a same-origin proof
        return client

    def push(self, server: ServerProcess, email: str, history_id: int | None = None,
             token: str | None = None) -> httpx.Response:
        """POST a Gmail notification to the webhook as Pub/Sub would."""
        body = self.signer.push_body(email, history_id if history_id is not None else self.gmail.history_id(email))
        return server.client.post("/webhooks/gmail", json=body, headers=self.signer.headers(token))

    def reply(self, to_email: str, original: Any, text: str = "", *, raw: bytes | None = None,
              headers: dict[str, str] | None = None) -> str:
        """Deliver a reply to a message we sent (threaded by its headers); returns the Gmail id."""
        if raw is None:
            from email.message import EmailMessage

            msg = EmailMessage()
            msg["From"] = str(original["To"])
            msg["To"] = to_email
            msg["Subject"] = "Re: " + str(original["Subject"])
            msg["Message-ID"] = f"<reply-{time.time_ns()}@example.org>"
            msg["In-Reply-To"] = str(original["Message-ID"])
            msg["References"] = " ".join(filter(None, [str(original.get("References") or ""),
                                                      str(original["Message-ID"])]))
            for name, value in (headers or {}).items():
                msg[name] = value
            msg.set_content(text)
            raw = msg.as_bytes()
        return self.gmail.deliver(to_email, raw)


def start_outreach(client: httpx.Client, recipient: str, **persona: Any) -> str:
    """As a signed-in user: create an autonomous persona and a thread to recipient; returns the thread id.

    The persona's window is always open and sends are not spaced, so real-mailbox tests need not wait for a window.
    """
    r = client.patch("/api/settings/sending", json={"spacing_min_seconds": 0, "spacing_max_seconds": 0})
    assert r.status_code == 200, r.text
    r = client.post("/api/assistants", json={**PERSONA, "autonomy": "autonomous", **ALWAYS_OPEN, **persona})
    assert r.status_code == 201, r.text
    persona_id = r.json()["id"]
    # server/deps.get_conn commits after the response is sent (FastAPI's request-scoped yield dependencies), so
    # wait until the persona is visible, as a person clicking on would.
    wait_until(lambda: client.get(f"/api/assistants/{persona_id}").status_code == 200, what="persona committed")
    r = client.post("/api/threads", json={"assistant_id": persona_id, "recipient_email": recipient})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def thread_when(client: httpx.Client, thread_id: str, check: Callable[[dict[str, Any]], Any], *, what: str,
                timeout: float = 30) -> dict[str, Any]:
    """Poll a thread's detail until check(detail) holds."""
    return wait_until(lambda: (t := client.get(f"/api/threads/{thread_id}").json()) and check(t) and t,
                      timeout=timeout, what=what)
