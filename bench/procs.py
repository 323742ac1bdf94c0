"""Bench helpers: the server and worker as real subprocesses of one source tree, and their CPU and memory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil
import psycopg

from tests.support import free_port


class App:
    """`email-assistant serve` (no in-process worker) and `email-assistant worker`, run from one source tree."""

    def __init__(self, tree: Path, env: dict[str, str], logs: Path) -> None:
        self.tree, self.logs = tree, logs
        self.port = free_port()
        base = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "EA_", "GOOGLE_", "DATABASE_"))}
        # PYTHONPATH and cwd make the tree's own packages (and migrations) win over the installed ones.
        self.env = {**base, **env, "PYTHONPATH": str(tree), "EA_WORKER_IN_PROCESS": "false", "EA_PORT": str(self.port)}
        self.server: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=60)

    def _spawn(self, command: str, log_name: str) -> subprocess.Popen[bytes]:
        log = (self.logs / log_name).open("ab")
        return subprocess.Popen([sys.executable, "-m", "server.cli", command], cwd=self.tree, env=self.env,
                                stdout=log, stderr=subprocess.STDOUT)

    def start_server(self) -> float:
        """Start the server; seconds until /readyz answers 200."""
        t0 = time.perf_counter()
        self.server = self._spawn("serve", "server.log")
        while True:
            if self.server.poll() is not None:
                raise RuntimeError(f"server exited: {(self.logs / 'server.log').read_text()[-3000:]}")
            try:
                if self.client.get("/readyz").status_code == 200:
                    return time.perf_counter() - t0
            except httpx.TransportError:
                pass
            if time.perf_counter() - t0 > 120:
                raise RuntimeError("server not ready after 120 s")
            time.sleep(0.02)

    def start_worker(self) -> None:
        """Start the job worker."""
        self.worker = self._spawn("worker", "worker.log")

    def _stop(self, proc: subprocess.Popen[bytes] | None) -> None:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop_server(self) -> None:
        """Stop the server gracefully."""
        self._stop(self.server)
        self.server = None

    def stop(self) -> None:
        """Stop both processes."""
        self._stop(self.worker)
        self.worker = None
        self.stop_server()

    def pids(self) -> dict[str, int]:
        """The running processes by role."""
        return {k: p.pid for k, p in (("server", self.server), ("worker", self.worker)) if p is not None}


def rss_mib(pid: int) -> float:
    """Resident memory of one process in MiB."""
    return psutil.Process(pid).memory_info().rss / 2**20


def cpu_seconds(pids: dict[str, int], postmaster: int, *, besides: frozenset[int] = frozenset()) -> dict[str, float]:
    """CPU seconds used so far by these processes and by Postgres (the postmaster, its live and its reaped children),
    leaving out the live backends in `besides` (the bench's own connections)."""
    used = {role: sum(psutil.Process(pid).cpu_times()[:2]) for role, pid in pids.items()}
    pm = psutil.Process(postmaster)
    times = pm.cpu_times()
    pg = times.user + times.system + times.children_user + times.children_system
    for child in pm.children(recursive=True):
        if child.pid in besides:
            continue
        try:
            pg += sum(child.cpu_times()[:2])
        except psutil.NoSuchProcess:
            continue
    return {**used, "pg": pg}


def postmaster_pid(pgdata: Path) -> int:
    """The pid in postmaster.pid."""
    return int((pgdata / "postmaster.pid").read_text().split()[0])


def py_spy(pid: int, out: Path, seconds: int) -> subprocess.Popen[bytes] | None:
    """Start `py-spy record` on a process for `seconds` (None when py-spy is not installed)."""
    exe = Path(sys.executable).with_name("py-spy")
    if not exe.exists():
        return None
    return subprocess.Popen([str(exe), "record", "-p", str(pid), "-d", str(seconds), "-f", "raw", "-o", str(out),
                             "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def top_frames(raw: Path, n: int = 14) -> list[tuple[str, float]]:
    """From a py-spy raw (collapsed stacks) file: the share of samples whose innermost frame is in each package
    ("self: psycopg"), then the busiest functions of ours and of LangGraph (inclusive)."""
    if not raw.exists():
        return []
    own = ("agent/", "graphs/", "runtime/", "langgraph/", "server/")
    selfs: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    grand = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit() or not stack:
            continue
        weight = int(count)
        grand += weight
        frames = [_frame(f) for f in stack.split(";")]
        leaf = frames[-1][1]
        selfs[f"self: {_package(leaf)}"] = selfs.get(f"self: {_package(leaf)}", 0) + weight
        for name in {f"{fn} ({path})" for fn, path in frames if path.startswith(own) and fn != "<module>"}:
            inclusive[name] = inclusive.get(name, 0) + weight
    if not grand:
        return []
    top_self = sorted(selfs.items(), key=lambda kv: -kv[1])[:6]
    top_own = sorted(inclusive.items(), key=lambda kv: -kv[1])[:n - 6]
    return [(name, count / grand) for name, count in [*top_self, *top_own]]


def _frame(frame: str) -> tuple[str, str]:
    """(function, path relative to site-packages or the tree) of one collapsed-stack frame."""
    fn, _, rest = frame.partition(" (")
    path = rest.rsplit(":", 1)[0].rstrip(")")
    for marker in ("site-packages/", "python3.11/", "/bench/../", "/perf/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    if "/before-tree/" in path:
        path = path.split("/before-tree/", 1)[1]
    return fn, path


def _package(path: str) -> str:
    """The top-level package (or file) of a path."""
    return path.split("/", 1)[0] if "/" in path else path


@contextmanager
def database(admin: str | None, work: Path, *, prefix: str) -> Iterator[str]:
    """A fresh database's conninfo, on `admin` or on an embedded server that lives as long as this block."""
    server = None
    if admin is None:
        import pgserver

        server = pgserver.get_server(work / "pg", cleanup_mode="delete")
        admin = server.get_uri()
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        yield psycopg.conninfo.make_conninfo(admin, dbname=name)
    finally:
        if server is not None:
            server.cleanup()
        else:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
