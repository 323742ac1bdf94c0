"""Pipeline benchmark: the real server and worker on real Postgres against the local model fake, before vs after.

Run: `.venv/bin/python -m bench.pipeline [--quick] [--before REV]` (about 9 minutes on 2 cores, --quick about 4).
It starts an embedded PostgreSQL (pgserver), checks REV (default: the `core` branch) out into a temporary git
worktree, and runs the same workload against that tree ("before") and this one ("after") in one run, each on a
fresh database with `email-assistant serve` and `email-assistant worker` as subprocesses in local sandbox mode.
The model is tests/fakes/openai_fake.py with a settable latency. It writes docs/performance.md.

The burst ratio (model at 1 s against 0 s) comes from two rounds on two sets of 200 threads. In each round both
sets answer a reply at the same depth of their conversations, one at 0 s and one at 1 s; the second round swaps the
latencies and runs 1 s first. The ratio is the mean of the two rounds' ratios; CPU and commits per reply are the
mean of the two 0 s bursts. (Until 2026-12-03 one set answered its first reply at 0 s and its second at 1 s, so the
1 s burst also carried a longer conversation, and a single pair swung 0.72–1.01 on this machine.)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import platform
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg

from bench import fill, procs
from bench.report import write_report
from tests.fakes.openai_fake import FakeOpenAI
from tests.fakes.scripted_model import ScriptedModel
from tests.support import ALWAYS_OPEN, PERSONA

log = logging.getLogger("bench.pipeline")
ROOT = Path(__file__).resolve().parent.parent
QUESTION = "Interested - what does it cost?"
SECOND = "Sounds good. How does onboarding work?"
LAST = "Not interested, thanks."
ISSUE_BASE = "10621a6c72"
"""The commit issue 10 measured ("today's" figures): the default 'before' when there is no `core` branch."""
PROFILES = Path(tempfile.gettempdir()) / "ea-pipeline-profiles"


def pct(values: list[float], q: float) -> float:
    """The q-quantile (nearest rank) of `values`."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))] if ordered else float("nan")


class Probe:
    """Reads progress from the database on one connection, counting its own transactions."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url, autocommit=True)
        self.queries = 0

    def out_counts(self, ids: list[str]) -> dict[str, tuple[int, datetime | None]]:
        """Outbound messages per thread and the time of the last one."""
        self.queries += 1
        rows = self.conn.execute("SELECT thread_id::text, count(*), max(at) FROM messages WHERE direction = 'out'"
                                 " AND thread_id = ANY(%s::uuid[]) GROUP BY thread_id", (ids,)).fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}

    def closed(self, ids: list[str]) -> int:
        """How many of these threads are closed."""
        self.queries += 1
        return self.conn.execute("SELECT count(*) FROM threads WHERE status = 'closed' AND id = ANY(%s::uuid[])",
                                 (ids,)).fetchone()[0]

    def wait_out(self, ids: list[str], n: int, timeout: float) -> dict[str, datetime]:
        """Poll until every thread has `n` outbound messages; the time of each one's n-th."""
        deadline = time.monotonic() + timeout
        while True:
            counts = self.out_counts(ids)
            done = {t: c[1] for t, c in counts.items() if c[0] >= n}
            if len(done) == len(ids):
                return done
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(done)}/{len(ids)} threads reached {n} sent emails in {timeout} s")
            time.sleep(0.1)


async def post_replies(base_url: str, ids: list[str], text: str, *, rate: float | None) -> dict[str, datetime]:
    """POST a sandbox reply to each thread, all at once (rate None) or `rate` a second; when each was posted."""
    posted: dict[str, datetime] = {}
    async with httpx.AsyncClient(base_url=base_url, timeout=120,
                                 limits=httpx.Limits(max_connections=64, max_keepalive_connections=0)) as client:
        # no keep-alive: a connection the server closed while idle would fail a (non-idempotent) POST
        async def one(tid: str) -> None:
            posted[tid] = datetime.now(UTC)
            r = await client.post(f"/api/threads/{tid}/sandbox-reply", json={"text": text})
            r.raise_for_status()

        if rate is None:
            await asyncio.gather(*(one(t) for t in ids))
        else:
            tasks = []
            for tid in ids:
                tasks.append(asyncio.create_task(one(tid)))
                await asyncio.sleep(1 / rate)
            await asyncio.gather(*tasks)
    return posted


def create_threads(app: procs.App, persona: str, n: int, tag: str) -> list[str]:
    """Create n threads (their first emails go out through the graph)."""
    return [app.client.post("/api/threads", json={"assistant_id": persona, "recipient_email": f"{tag}{i}@example.com"})
            .raise_for_status().json()["id"] for i in range(n)]


class ConnectionPeak:
    """Samples the database's client connections (other than its own and the probe's) every 50 ms; keeps the peak."""

    def __init__(self, url: str) -> None:
        self._url, self.peak, self._stop = url, 0, threading.Event()
        self.cpu, self.queries = 0.0, 0
        """CPU seconds of the sampler's own backend (taken out of the Postgres CPU a reply costs)."""
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ConnectionPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with psycopg.connect(self._url, autocommit=True) as conn:
            while not self._stop.wait(0.05):
                n = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                 " AND pid <> pg_backend_pid() AND backend_type = 'client backend'").fetchone()[0]
                self.peak = max(self.peak, n - 1)  # the probe's connection is not the app's
                self.queries += 1
            self.cpu = sum(psutil.Process(conn.info.backend_pid).cpu_times()[:2])  # the sampler's, not the app's


def timer_work(url: str) -> dict[str, Any]:
    """With 100,000 waiting: jobs left in the queue, and what the follow-up tick's query reads (this tree's query)."""
    from agent.threads.service import DUE_FOLLOW_UPS, FIRST_DUE

    with psycopg.connect(url, autocommit=True) as conn:
        todo = conn.execute("SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'").fetchone()[0]
        has_index = conn.execute("SELECT 1 FROM pg_indexes WHERE indexname = 'threads_follow_up_due_idx'").fetchone()
        if not has_index:
            return {"todo_jobs_large": todo}
        plan = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + DUE_FOLLOW_UPS,
                            {"waiting": "waiting", "reply": "reply", "limit": 500, "due": FIRST_DUE[0],
                             "id": FIRST_DUE[1]}).fetchone()[0][0]
    nodes, read, scans = [plan["Plan"]], 0, []
    while nodes:
        node = nodes.pop()
        if "Scan" in node["Node Type"]:
            read += node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)
            scans.append(f"{node['Node Type']} {node.get('Index Name', '')}".strip())
        nodes += node.get("Plans", [])
    return {"todo_jobs_large": todo, "due_rows_read": read, "due_ms": plan["Execution Time"],
            "due_plan": ", ".join(scans)}


def _burst(app: procs.App, probe: Probe, fake: FakeOpenAI, url: str, postmaster: int, ids: list[str],
           latency: float, n: int, logs: Path | None, cfg: dict[str, int]) -> dict[str, Any]:
    """All of `ids` reply at once with the model at `latency`: replies/s, and per reply the CPU (server, worker,
    Postgres), commits and checkpoint rows; py-spy profiles when `logs` is given."""
    fake.latency_seconds = latency
    pids = app.pids()
    mine = frozenset({probe.conn.info.backend_pid})  # the bench's own polling is not the app's work
    c0, q0, cpu0 = fill.commits(url), probe.queries, procs.cpu_seconds(pids, postmaster, besides=mine)
    rows0 = fill.checkpoint_rows(url)
    spies = [procs.py_spy(pid, logs / f"{role}-burst-{latency:g}.txt", cfg["spy"]) for role, pid in pids.items()] \
        if logs else []
    t0 = time.perf_counter()
    with ConnectionPeak(url) as peak:
        asyncio.run(post_replies(str(app.client.base_url), ids, QUESTION, rate=None))
        probe.wait_out(ids, n, 900)
    elapsed = time.perf_counter() - t0
    cpu1, q1 = procs.cpu_seconds(pids, postmaster, besides=mine), probe.queries
    cpu1["pg"] -= peak.cpu
    time.sleep(1.5)  # statistics are flushed about once a second
    c1, rows1 = fill.commits(url), fill.checkpoint_rows(url)
    for spy in spies:
        if spy is not None:
            spy.wait(timeout=cfg["spy"] + 30)
    profiles = {}
    if logs:
        for role in pids:
            raw = logs / f"{role}-burst-{latency:g}.txt"
            profiles[role] = procs.top_frames(raw)
            if raw.exists():  # kept for a closer look (flamegraph input)
                shutil.copy(raw, PROFILES / f"{logs.name}-{raw.name}")
    fake.latency_seconds = 0.0
    return {"rate": len(ids) / elapsed, "peak": peak.peak, "cpu": sum(cpu1[k] - cpu0[k] for k in cpu0) / len(ids) * 1000,
            "split": {k: (cpu1[k] - cpu0[k]) / len(ids) * 1000 for k in cpu0},
            "commits": (c1 - c0 - (q1 - q0) - peak.queries - 4) / len(ids),
            "rows": {k: (rows1[k] - rows0[k]) / len(ids) for k in rows0}, "profiles": profiles}


def run_variant(name: str, tree: Path, admin: str, pgdata: Path, fake: FakeOpenAI, cfg: dict[str, int],
                work: Path) -> dict[str, Any]:
    """Every measurement on one source tree, on its own fresh database."""
    dbname = f"bench_{name}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    url = psycopg.conninfo.make_conninfo(admin, dbname=dbname)
    logs = work / name
    logs.mkdir()
    env = {"DATABASE_URL": url, "EA_DATA_DIR": str(logs / "data"), "OPENAI_API_KEY": "k",
           "OPENAI_BASE_URL": fake.base_url, "EA_LLM_MAX_RETRIES": "0", "EA_CHECK_DELIVERABILITY": "false",
           "EA_LOG_LEVEL": "WARNING"}
    app = procs.App(tree, env, logs)
    postmaster = procs.postmaster_pid(pgdata)
    out: dict[str, Any] = {"name": name}
    fake.latency_seconds = 0.0
    try:
        out["start_fresh"] = app.start_server()
        app.stop_server()
        restarts = []
        for _ in range(cfg["restarts"]):
            restarts.append(app.start_server())
            app.stop_server()
        out["start_restart"] = sorted(restarts)[len(restarts) // 2]
        app.start_server()
        app.start_worker()
        persona = app.client.post("/api/assistants", json={**PERSONA, **ALWAYS_OPEN, "autonomy": "autonomous"}) \
            .raise_for_status().json()["id"]
        probe = Probe(url)
        log.info("%s: storage of %d six-message conversations", name, cfg["storage"])
        before = fill.sizes(url)
        conv = create_threads(app, persona, cfg["storage"], "conv")
        probe.wait_out(conv, 1, 300)
        for n, text in ((2, QUESTION), (3, SECOND)):
            asyncio.run(post_replies(str(app.client.base_url), conv, text, rate=None))
            probe.wait_out(conv, n, 300)
        asyncio.run(post_replies(str(app.client.base_url), conv, LAST, rate=None))
        deadline = time.monotonic() + 300
        while probe.closed(conv) < len(conv):
            if time.monotonic() > deadline:
                raise RuntimeError("conversations did not close")
            time.sleep(0.2)
        time.sleep(1.0)  # the close path's last commits (and any pruning) land
        after = fill.sizes(url)
        delta = {t: after.get(t, 0) - before.get(t, 0) for t in after}
        out["bytes_per_conv"] = sum(delta.values()) / len(conv)
        out["ckpt_share"] = sum(delta.get(t, 0) for t in fill.CHECKPOINT_TABLES) / max(1, sum(delta.values()))
        out["bytes_top"] = sorted(((t, d / len(conv)) for t, d in delta.items() if d), key=lambda kv: -kv[1])[:6]

        log.info("%s: 2 x %d burst threads + %d others", name, cfg["burst"], cfg["rate_n"] + cfg["serial"])
        burst_a = create_threads(app, persona, cfg["burst"], "burst")
        burst_b = create_threads(app, persona, cfg["burst"], "burst_b")
        extra = create_threads(app, persona, cfg["rate_n"] + cfg["serial"], "extra")
        probe.wait_out(burst_a + burst_b + extra, 1, 600)
        time.sleep(1.0)
        # Two rounds. In each, the two bursts answer replies at the same depth of their conversations (the first
        # reply, then the second); the second round swaps which set gets which latency and runs 1 s first.
        rounds = (((burst_a, 0.0, 2), (burst_b, 1.0, 2)), ((burst_a, 1.0, 3), (burst_b, 0.0, 3)))
        runs: list[dict[float, dict[str, Any]]] = []
        for i, pair in enumerate(rounds):
            runs.append({lat: _burst(app, probe, fake, url, postmaster, ids, lat, n, logs if i == 0 else None, cfg)
                         for ids, lat, n in pair})
        zero, one = [r[0.0] for r in runs], [r[1.0] for r in runs]
        out["burst_rounds"] = [(r[0.0]["rate"], r[1.0]["rate"]) for r in runs]
        out["burst_ratio"] = sum(r[1.0]["rate"] / r[0.0]["rate"] for r in runs) / len(runs)
        out["burst_0"], out["burst_1"] = (sum(b["rate"] for b in bs) / len(bs) for bs in (zero, one))
        out["connections_peak_0"], out["connections_peak_1"] = (max(b["peak"] for b in bs) for bs in (zero, one))
        out["cpu_per_reply_ms"] = sum(b["cpu"] for b in zero) / len(zero)
        out["cpu_split"] = {k: sum(b["split"][k] for b in zero) / len(zero) for k in zero[0]["split"]}
        out["commits_per_reply"] = sum(b["commits"] for b in zero) / len(zero)
        out["ckpt_rows_per_reply"] = {k: sum(b["rows"][k] for b in zero) / len(zero) for k in zero[0]["rows"]}
        for lat, b in runs[0].items():
            for role, top in b["profiles"].items():
                out[f"profile_{role}_{lat:g}"] = top
        burst = burst_a + burst_b

        log.info("%s: one reply at a time at 1 s", name)
        fake.latency_seconds = 1.0
        serial, rest = extra[:cfg["serial"]], extra[cfg["serial"]:]
        t0 = time.perf_counter()
        for tid in serial:
            asyncio.run(post_replies(str(app.client.base_url), [tid], QUESTION, rate=None))
            probe.wait_out([tid], 2, 120)
        out["serial_1"] = len(serial) / (time.perf_counter() - t0)
        out["rss_small"] = {k: procs.rss_mib(p) for k, p in app.pids().items()}

        fake.latency_seconds = 0.0
        template = burst[0]
        waiting = len(burst) + len(extra)
        fill.clone_waiting(url, template=template, count=max(0, cfg["small"] - waiting), batch="a")
        # Reply → send at 5/s (the latency target), then resume latency at a rate every variant keeps up with, at
        # 1,000 and at 100,000 waiting threads: only the number of waiting threads differs between those two.
        for key, n, rate, batch in (("lat_5", 2, cfg["rate"], None), (f"lat_{cfg['small']}", 3, cfg["resume_rate"], None),
                                    (f"lat_{cfg['large']}", 4, cfg["resume_rate"], "b")):
            if batch:
                log.info("%s: filling to %d waiting threads", name, cfg["large"])
                fill.clone_waiting(url, template=template, count=cfg["large"] - cfg["small"], batch=batch)
                time.sleep(2.0)
            log.info("%s: %s", name, key)
            posted = asyncio.run(post_replies(str(app.client.base_url), rest, QUESTION, rate=rate))
            try:
                sent = probe.wait_out(rest, n, cfg["phase_timeout"])
            except RuntimeError as exc:  # a variant too slow to finish: what did not arrive counts as the timeout
                log.warning("%s: %s", name, exc)
                sent = {t: c[1] for t, c in probe.out_counts(rest).items() if c[0] >= n}
            lat = [(sent[t] - posted[t]).total_seconds() if t in sent else float(cfg["phase_timeout"]) for t in rest]
            out[key] = {"p50": pct(lat, 0.5), "p90": pct(lat, 0.9), "p99": pct(lat, 0.99)}
        out["rss_large"] = {k: procs.rss_mib(p) for k, p in app.pids().items()}
        out.update(timer_work(url))
        app.stop_server()
        out["start_restart_large"] = app.start_server()
    finally:
        app.stop()
    return out


def main() -> None:
    """Run both variants and write docs/performance.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts (about 3 minutes)")
    parser.add_argument("--before", default=None,
                        help="git revision measured as 'before' (default: where this branch left `core`, else the"
                        " issue's base commit)")
    parser.add_argument("--only", choices=("before", "after"), help="run one variant only")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "performance.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    cfg = ({"storage": 8, "burst": 60, "serial": 4, "rate_n": 20, "rate": 5, "resume_rate": 2, "small": 1000,
            "large": 100_000, "restarts": 1, "spy": 8, "phase_timeout": 90} if args.quick else
           {"storage": 15, "burst": 200, "serial": 6, "rate_n": 40, "rate": 5, "resume_rate": 2, "small": 1000,
            "large": 100_000, "restarts": 2, "spy": 15, "phase_timeout": 180})
    import pgserver

    PROFILES.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="ea-pipeline-"))
    work.chmod(0o755)
    has_core = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", "-q", "core"],
                              capture_output=True).returncode == 0
    revision = (["rev-parse", args.before] if args.before else
                ["merge-base", "HEAD", "core"] if has_core else ["rev-parse", ISSUE_BASE])
    commit = subprocess.run(["git", "-C", str(ROOT), *revision], check=True, capture_output=True,
                            text=True).stdout.strip()
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], check=True, capture_output=True,
                          text=True).stdout.strip()
    before_tree = work / "before-tree"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(before_tree), commit], check=True,
                   capture_output=True)
    pg = pgserver.get_server(work / "pg", cleanup_mode="delete")
    results: dict[str, dict[str, Any]] = {}
    started = time.perf_counter()
    try:
        with FakeOpenAI(responder=ScriptedModel()) as fake:
            for name, tree in (("before", before_tree), ("after", ROOT)):
                if args.only and args.only != name:
                    continue
                results[name] = run_variant(name, tree, pg.get_uri(), work / "pg", fake, cfg, work)
                log.info("%s: %s", name, {k: v for k, v in results[name].items() if not k.startswith("profile")})
    finally:
        pg.cleanup()
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before_tree)], check=False)
        shutil.rmtree(work, ignore_errors=True)
    pg_version = "PostgreSQL (pgserver " + __import__("importlib.metadata").metadata.version("pgserver") + ")"
    write_report(args.out, results, cfg=cfg, quick=args.quick, commits={"before": commit, "after": head},
                 machine=f"{platform.machine()}, {psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f}"
                         f" GiB, Python {platform.python_version()}, {pg_version}",
                 duration=time.perf_counter() - started)


if __name__ == "__main__":
    main()
