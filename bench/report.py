"""Writing docs/performance.md from the pipeline bench's results."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

Row = tuple[str, str, Callable[[dict[str, Any]], float], str, Callable[[float, float | None], bool | None]]


def _ratio(a: str, b: str) -> Callable[[dict[str, Any]], float]:
    return lambda r: r[a] / r[b]


def _lat(size: str, q: str) -> Callable[[dict[str, Any]], float]:
    return lambda r: r[f"lat_{size}"][q] * 1000


ROWS: list[Row] = [
    ("burst at 1 s ÷ burst at 0 s (200 replies at once)", "0.29 (0.42)", lambda r: r["burst_ratio"], "≥ 0.80",
     lambda v, b: v >= 0.8),
    ("burst at 1 s ÷ one at a time at 1 s", "3.8×", _ratio("burst_1", "serial_1"), "≥ 25×", lambda v, b: v >= 25),
    ("burst throughput, model 0 s (replies/s)", "6.2", lambda r: r["burst_0"], "info", lambda v, b: None),
    ("burst throughput, model 1 s (replies/s)", "1.78", lambda r: r["burst_1"], "info", lambda v, b: None),
    ("one reply at a time, model 1 s (replies/s)", "0.46", lambda r: r["serial_1"], "info", lambda v, b: None),
    ("reply posted → send, 5/s, model 0 s: p50 (ms)", "138", _lat("5", "p50"), "info", lambda v, b: None),
    ("reply posted → send, 5/s, model 0 s: p99 (ms)", "267", _lat("5", "p99"), "≤ 100 (push target, proxy)",
     lambda v, b: v <= 100),
    ("resume p90 at 1,000 waiting (ms)", "222", _lat("1000", "p90"), "info", lambda v, b: None),
    ("resume p90 at 100,000 waiting (ms)", "5,200", _lat("100000", "p90"), "info", lambda v, b: None),
    ("resume p90, 100,000 ÷ 1,000 waiting", "23×", lambda r: r["lat_100000"]["p90"] / r["lat_1000"]["p90"],
     "≤ 1.25×", lambda v, b: v <= 1.25),
    ("Postgres KB per finished six-message conversation", "115–124", lambda r: r["bytes_per_conv"] / 1000, "≤ 48",
     lambda v, b: v <= 48),
    ("  of which checkpoints", "70%", lambda r: r["ckpt_share"] * 100, "info", lambda v, b: None),
    ("server + worker + Postgres CPU per answered reply (ms), model 0 s", "—", lambda r: r["cpu_per_reply_ms"],
     "≤ ⅓ of before", lambda v, b: None if b is None else v <= b / 3),
    ("commits per answered reply", "≈ 100", lambda r: r["commits_per_reply"], "≤ 20", lambda v, b: v <= 20),
    ("peak connections, server + worker, burst at model 1 s", "—", lambda r: r["connections_peak_1"],
     "≤ 43 (server 10 + 5 + 5 + 1, worker that + 1 LISTEN)", lambda v, b: v <= 43),
    ("server RSS, ~300 waiting (MiB)", "151", lambda r: r["rss_small"]["server"], "flat", lambda v, b: None),
    ("server RSS, 100,000 waiting (MiB)", "151", lambda r: r["rss_large"]["server"], "flat", lambda v, b: None),
    ("jobs queued (todo) while 100,000 threads wait", "≈ 100,000", lambda r: r["todo_jobs_large"], "no job per timer",
     lambda v, b: v < 1000),
    ("follow-up tick's query at 100,000 waiting: rows read", "—", lambda r: r["due_rows_read"], "due rows only",
     lambda v, b: None),
    ("worker RSS, 100,000 waiting (MiB)", "—", lambda r: r["rss_large"]["worker"], "info", lambda v, b: None),
    ("serve → /readyz, fresh database (s)", "3.3–3.6", lambda r: r["start_fresh"], "info", lambda v, b: None),
    ("serve → /readyz, restart (s)", "2.1–2.7", lambda r: r["start_restart"], "≤ 2", lambda v, b: v <= 2),
    ("serve → /readyz, restart at 100,000 waiting (s)", "—", lambda r: r["start_restart_large"], "≤ 2",
     lambda v, b: v <= 2),
]


def _fmt(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}"


def write_report(path: Path, results: dict[str, dict[str, Any]], *, cfg: dict[str, int], quick: bool,
                 commits: dict[str, str], machine: str, duration: float) -> None:
    """Write the markdown report: machine, versions, date, then target | issue | before | after | verdict."""
    lines = [
        "# Performance", "",
        "Measured by `python -m bench.pipeline" + (" --quick" if quick else "") + "` (bench/pipeline.py), which runs",
        "`email-assistant serve` (no in-process worker) and `email-assistant worker` as subprocesses in local sandbox",
        "mode on an embedded PostgreSQL, against tests/fakes/openai_fake.py with a set model latency, once on the",
        "'before' commit (a temporary git worktree) and once on this tree, in the same run.", "",
        f"- Machine: {machine}; every process (fakes, bench, Postgres) on it.",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; run took {duration / 60:.1f} min.",
        f"- Before: `{commits['before'][:10]}`; after: `{commits['after'][:10]}` (plus the working tree).",
        f"- Counts: 2 × {cfg['burst']} burst threads (two rounds), {cfg['serial']} one-at-a-time replies, "
        f"{cfg['rate_n']} replies at "
        f"{cfg['rate']}/s (latency) and at {cfg['resume_rate']}/s (resume, at each size), "
        f"{cfg['storage']} full conversations, waiting threads "
        f"{cfg['small']:,} and {cfg['large']:,} (bulk-cloned in SQL from a real waiting thread, with its queued jobs).",
        "",
        "| target | issue's figure | before | after | target | verdict |", "|---|---|---|---|---|---|",
    ]
    before, after = results.get("before"), results.get("after")
    for label, issue, get, target, ok in ROWS:
        b = _safe(get, before)
        a = _safe(get, after)
        verdict = ok(a, b) if a is not None else None
        word = "—" if verdict is None else ("met" if verdict else "**missed**")
        lines.append(f"| {label} | {issue} | {_fmt(b)} | {_fmt(a)} | {target} | {word} |")
    if after and after.get("due_plan"):
        lines += ["", f"The follow-up tick's query at 100,000 waiting (after): {after['due_plan'].strip()}, "
                      f"{after['due_ms']:.2f} ms."]
    for name, r in results.items():
        if r.get("burst_rounds"):
            lines += ["", f"Burst rounds ({name}), replies/s at 0 s and 1 s: " +
                      "; ".join(f"{a:.2f} and {b:.2f} ({b / a:.2f})" for a, b in r["burst_rounds"]) + "."]
    if before and after:
        lines += ["", f"CPU per reply after ÷ before: {after['cpu_per_reply_ms'] / before['cpu_per_reply_ms']:.2f}; "
                      f"split (ms/reply) before {_split(before)}, after {_split(after)}."]
    elif before or after:
        name, r = ("before", before) if before else ("after", after)
        lines += ["", f"CPU per reply split (ms/reply), {name}: {_split(r)}."]
    for name, r in results.items():
        lines += ["", f"## {name}: where the bytes of a conversation go (bytes per conversation)", ""]
        lines += [f"- {t}: {int(d):,}" for t, d in r["bytes_top"]]
        if "ckpt_rows_per_reply" in r:
            lines += ["", f"Checkpoint rows written per reply ({name}): " +
                      ", ".join(f"{t} {n:.1f}" for t, n in r["ckpt_rows_per_reply"].items()) + "."]
        for role in ("worker", "server"):
            for latency in ("0", "1"):
                if r.get(key := f"profile_{role}_{latency}"):
                    lines += ["", f"## {name}: {role} py-spy, burst at model {latency} s (share of samples)", "",
                              "```"] + [f"{share * 100:5.1f}%  {frame}" for frame, share in r[key]] + ["```"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _safe(get: Callable[[dict[str, Any]], float], r: dict[str, Any] | None) -> float | None:
    if r is None:
        return None
    try:
        return get(r)
    except (KeyError, ZeroDivisionError):
        return None


def _split(r: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:.0f}" for k, v in r["cpu_split"].items())
