"""The crash run: threads and replies keep flowing while processes are SIGKILLed at chosen and random points."""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx

from tests.crash import figures
from tests.crash.cluster import USERS, Cluster, Proc, pid_of_client
from tests.fakes._server import Request, Response
from tests.support import ALWAYS_OPEN, PERSONA

log = logging.getLogger(__name__)
# Chosen points inside the processes (agent/failpoints.py) and at the fakes (the caller is killed by the harness).
FAILPOINTS = ("before_model_call", "after_model_call", "after_transport_send", "after_inbound_store",
              "mid_history_sync")
FAKE_POINTS = ("gmail_send_accepted", "model_request_received")


@dataclass
class Plan:
    """What one crash run does."""

    kills: int = 20
    threads: int = 12
    replies_per_thread: int = 2
    workers: int = 2  # 0: the server's in-process worker
    seed: int = 1
    settle_seconds: float = 90
    kill_every: tuple[float, float] = (1.0, 4.0)  # seconds between random kills
    armed_share: float = 0.5  # share of (re)starts armed with a failpoint
    fake_kill_chance: float = 0.12  # chance that a send or model request kills its caller
    poll_seconds: int = 5
    thread_waves: int = 3
    warmup_seconds: float = 8  # the first wave runs this long before the first kill
    max_killing_seconds: float | None = None  # stop killing after this long even when fewer kills happened


@dataclass
class Run:
    """A crash run against a cluster; `run()` returns the figures."""

    cluster: Cluster
    plan: Plan
    rng: random.Random = field(init=False)
    kills: list[dict[str, Any]] = field(default_factory=list)
    delivered: list[dict[str, str]] = field(default_factory=list)
    unexpected_exits: list[dict[str, Any]] = field(default_factory=list)
    recipients: dict[str, str] = field(default_factory=dict)  # recipient -> mailbox
    _replied_to: dict[str, set[str]] = field(default_factory=dict)
    _pending_kills: dict[int, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _killing: bool = False
    _personas: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.plan.seed)

    # ---- kills --------------------------------------------------------------------------------------------------
    def _arm(self) -> str:
        if not self._killing or self.rng.random() >= self.plan.armed_share:
            return ""
        return f"{self.rng.choice(FAILPOINTS)}:{self.rng.randint(1, 3)}"

    def _kill_caller(self, point: str, client: tuple[str, int] | None) -> None:
        """From a fake's request thread: SIGKILL the process that made this request (only ours)."""
        if not self._killing or client is None or self.rng.random() >= self.plan.fake_kill_chance:
            return
        pid = pid_of_client(client)
        ours = {p.pid for p in self.cluster.procs()}
        if pid is None or pid not in ours:
            return
        with self._lock:
            self._pending_kills[pid] = point
        os.kill(pid, signal.SIGKILL)

    def _on_gmail(self, req: Request, resp: Response) -> None:
        if req.path.endswith("/messages/send") and resp.status == 200:
            self._kill_caller("gmail_send_accepted", req.client)

    def _on_model(self, body: dict, client: tuple[str, int]) -> None:
        self._kill_caller("model_request_received", client)

    def _reap(self, proc: Proc) -> None:
        """A dead process: record how it died and start it again (armed or not)."""
        assert proc.popen is not None
        code = proc.popen.returncode
        with self._lock:
            point = self._pending_kills.pop(proc.popen.pid, None)
        if code == -signal.SIGKILL:
            point = point or (proc.failpoints.split(":")[0] if proc.failpoints else "random")
            self.kills.append({"role": proc.role, "point": point, "at": time.time()})
        else:
            self.unexpected_exits.append({"role": proc.role, "code": code, "at": time.time()})
            log.error("%s exited with %s (see %s)", proc.role, code, proc.log_path)
        proc.start(self._arm())

    def _random_kill(self) -> None:
        live = [p for p in self.cluster.procs() if p.alive()]
        if live:
            victim = self.rng.choice(live)
            with self._lock:
                self._pending_kills[victim.popen.pid] = "random"  # type: ignore[union-attr]
            victim.kill()

    # ---- traffic ------------------------------------------------------------------------------------------------
    def setup_personas(self) -> None:
        for email, client in self.cluster.clients.items():
            r = client.post("/api/assistants", json={**PERSONA, "autonomy": "autonomous", **ALWAYS_OPEN,
                                                     "follow_up_count": 0, "max_replies": 20})
            assert r.status_code == 201, r.text
            self._personas[email] = r.json()["id"]
        time.sleep(0.5)  # the persona commits after its response is sent (server/deps.get_conn)

    def start_wave(self, wave: int) -> None:
        """Create this wave's threads; a request lost to a kill is retried unless the thread exists."""
        waves = self.plan.thread_waves
        first, last = wave * self.plan.threads // waves, (wave + 1) * self.plan.threads // waves
        emails = list(USERS)
        for n in range(first, last):
            recipient, mailbox = f"lead{n}@example.org", emails[n % len(emails)]
            self.recipients[recipient] = mailbox
            self._replied_to[recipient] = set()
            for _ in range(20):
                if self.cluster.query("SELECT 1 FROM threads WHERE recipient_email = %s", (recipient,)):
                    break
                try:
                    r = self.cluster.clients[mailbox].post("/api/threads", json={
                        "assistant_id": self._personas[mailbox], "recipient_email": recipient})
                    if r.status_code == 201:
                        break
                except httpx.TransportError:
                    pass
                self.tick(reply=False)
                time.sleep(0.5)

    def _reply(self, recipient: str, mailbox: str, original: EmailMessage) -> None:
        n = len(self._replied_to[recipient]) + 1
        msg = EmailMessage()
        msg["From"], msg["To"] = recipient, mailbox
        msg["Subject"] = "Re: " + str(original["Subject"]).removeprefix("Re: ")
        msg["Message-ID"] = f"<reply-{n}-{time.time_ns()}@example.org>"
        msg["In-Reply-To"] = str(original["Message-ID"])
        msg["References"] = " ".join(filter(None, [str(original.get("References") or ""), str(original["Message-ID"])]))
        msg.set_content(f"Thanks. How much does it cost for {n} clinics?")
        assert self.cluster.gmail is not None
        self.cluster.gmail.deliver(mailbox, msg.as_bytes())
        self._replied_to[recipient].add(str(original["Message-ID"]))
        self.delivered.append({"recipient": recipient, "mailbox": mailbox, "message_id": msg["Message-ID"],
                               "in_reply_to": str(original["Message-ID"])})
        if self.rng.random() < 0.8:  # otherwise only polling finds it
            self.cluster.push(mailbox)

    def replies(self) -> None:
        """Each recipient answers the latest email it got, until it has written replies_per_thread times."""
        assert self.cluster.gmail is not None
        latest: dict[str, EmailMessage] = {}
        for mailbox in USERS:
            for m in self.cluster.gmail.messages(mailbox, "SENT"):
                latest[str(m.parsed["To"]).lower()] = m.parsed
        for recipient, original in latest.items():
            done = self._replied_to.get(recipient)
            if done is None or len(done) >= self.plan.replies_per_thread or str(original["Message-ID"]) in done:
                continue
            self._reply(recipient, self.recipients[recipient], original)

    def tick(self, *, reply: bool = True) -> None:
        for proc in self.cluster.procs():
            if proc.popen is not None and proc.popen.poll() is not None:
                self._reap(proc)
        if reply:
            self.replies()

    # ---- the run ------------------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Start threads in waves, kill until plan.kills, restart everything clean, settle, count."""
        assert self.cluster.gmail is not None
        self.cluster.gmail.after_handle.append(self._on_gmail)
        self.cluster.openai.before_answer.append(self._on_model)
        self.setup_personas()
        self.start_wave(0)
        warm_until = time.monotonic() + self.plan.warmup_seconds
        while time.monotonic() < warm_until:
            self.tick()
            time.sleep(0.1)
        self._killing = True
        started = time.monotonic()
        next_kill = time.monotonic() + self.rng.uniform(*self.plan.kill_every)
        wave, reported = 1, 0
        budget = self.plan.max_killing_seconds
        while len(self.kills) < self.plan.kills and (budget is None or time.monotonic() - started < budget):
            if len(self.kills) >= reported + 20:
                reported = len(self.kills)
                log.info("%d kills, %d threads, %d replies delivered", reported, len(self.recipients),
                         len(self.delivered))
            if wave < self.plan.thread_waves and len(self.kills) >= wave * self.plan.kills / self.plan.thread_waves:
                self.start_wave(wave)
                wave += 1
            self.tick()
            if time.monotonic() >= next_kill:
                self._random_kill()
                next_kill = time.monotonic() + self.rng.uniform(*self.plan.kill_every)
            time.sleep(0.1)
        self._killing = False
        killing_seconds = time.monotonic() - started
        # The last restart: every process is killed once more and started again unarmed.
        for proc in self.cluster.procs():
            if proc.alive():
                with self._lock:
                    self._pending_kills[proc.popen.pid] = "final"  # type: ignore[union-attr]
                proc.kill()
        self.tick(reply=False)
        last_restart = time.monotonic()
        settle = self.cluster.wait_quiet(timeout=self.plan.settle_seconds, done=self.settled)
        out = figures.count(self.cluster, delivered=self.delivered)
        out.update({
            "kills": len(self.kills), "kills_by_point": _by_point(self.kills),
            "unexpected_exits": len(self.unexpected_exits), "mode": "in-process worker" if not self.plan.workers
            else f"{self.plan.workers} separate workers", "killing_seconds": round(killing_seconds, 1),
            "settle_seconds": round(settle, 1), "settled": self.settled(),
            "seconds_after_last_restart": round(time.monotonic() - last_restart, 1), "plan": asdict(self.plan),
        })
        return out

    def settled(self) -> bool:
        """Every delivered reply decided, nothing active, and no job left `doing` by a dead worker (recovery ran)."""
        decided = {mid for r in self.cluster.query(
            "SELECT m.message_id FROM messages m JOIN events e ON e.kind = 'decision'"
            " AND e.detail->'message_ids' ? m.id::text WHERE m.direction = 'in'") for mid in [r["message_id"]]}
        busy = self.cluster.query("SELECT 1 FROM threads WHERE status = 'active' LIMIT 1")
        return all(d["message_id"] in decided for d in self.delivered) and not busy \
            and not self.cluster.query(figures.STUCK_JOBS_SQL)


def _by_point(kills: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for k in kills:
        out[k["point"]] = out.get(k["point"], 0) + 1
    return out


def run_crash(workdir: Path, plan: Plan) -> dict[str, Any]:
    """One crash run on a fresh cluster; writes figures.json into workdir and returns the figures."""
    cluster = Cluster(workdir, workers=plan.workers, poll_seconds=plan.poll_seconds)
    try:
        cluster.start()
        result = Run(cluster, plan).run()
    finally:
        cluster.close()
    (workdir / "figures.json").write_text(json.dumps(result, indent=1, default=str))
    return result
