"""Crash suite, long run: `python -m bench.crash --kills 200` (see docs/reliability.md).

Runs the real server and separate workers (or `--workers 0`: the in-process worker) on an embedded PostgreSQL of
its own, in Google mode against the local fakes, SIGKILLs them at chosen and random points while threads and replies
flow, restarts them, and after the last restart counts duplicates, undecided replies, invalid threads and stuck jobs.
Prints a table and writes the figures as JSON (--out).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

from tests.crash.figures import table
from tests.crash.harness import Plan, run_crash

log = logging.getLogger("bench.crash")


def main(argv: list[str] | None = None) -> int:
    """Run one crash run per --workers value; exit 1 when any figure that must be 0 is not."""
    parser = argparse.ArgumentParser(prog="python -m bench.crash", description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=200, help="SIGKILLs per run (default 200)")
    parser.add_argument("--threads", type=int, default=60, help="threads per run (default 60)")
    parser.add_argument("--replies", type=int, default=3, help="replies per thread (default 3)")
    parser.add_argument("--workers", type=int, nargs="+", default=[2],
                        help="separate worker processes per run; 0 = the server's in-process worker (default 2)")
    parser.add_argument("--minutes", type=float, default=None,
                        help="stop killing after this many minutes even when fewer kills happened (the table says so)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--settle", type=float, default=120, help="seconds to wait after the last restart")
    parser.add_argument("--out", type=Path, default=Path("crash-figures.json"), help="where to write the figures")
    parser.add_argument("--workdir", type=Path, default=None, help="keep process logs here (default: a temp dir)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "pgserver", "tests.fakes"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ea-crash-"))
    results = []
    for i, workers in enumerate(args.workers):
        plan = Plan(kills=args.kills, threads=args.threads, replies_per_thread=args.replies, workers=workers,
                    seed=args.seed + i, settle_seconds=args.settle, thread_waves=5,
                    max_killing_seconds=args.minutes * 60 if args.minutes else None)
        log.info("crash run %d: %s (logs in %s)", i + 1, plan, workdir / f"run{i + 1}")
        result = run_crash(workdir / f"run{i + 1}", plan)
        results.append(result)
        sys.stdout.write(f"\n== {result['mode']} ==\n{table(result)}\n")
    args.out.write_text(json.dumps(results, indent=1, default=str))
    sys.stdout.write(f"\nfigures written to {args.out}; process logs in {workdir}\n")
    return 0 if all(failures(r) == {} for r in results) else 1


def failures(result: dict) -> dict[str, int]:
    """The figures that must be 0 and are not."""
    keys = ("duplicate_emails_by_message_id", "duplicate_emails_by_thread_step", "duplicate_answers_to_one_reply",
            "undecided_replies", "invalid_threads", "stuck_jobs")
    return {k: result[k] for k in keys if result[k]}


if __name__ == "__main__":
    sys.exit(main())
