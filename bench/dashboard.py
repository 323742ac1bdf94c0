"""Dashboard render times with 10,000 threads: `python -m bench.dashboard` writes docs/bench-dashboard.md.

Runs a real server (local mode, embedded PostgreSQL unless DATABASE_URL is set) on a scratch database, fills it
with threads, messages and decisions, and times the pages a user opens most.
"""

from __future__ import annotations

import argparse
import platform
import re
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from tests.support import PERSONA, ServerProcess, query

OUT = Path(__file__).resolve().parent.parent / "docs" / "bench-dashboard.md"


def fill(database_url: str, user_id: str, assistant_id: str, threads: int) -> str:
    """Insert threads (a mix of statuses), two emails each and a decision on every reply; returns one thread id."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO threads (user_id, assistant_id, recipient_email, recipient_name, status, subject, created_at)"
            " SELECT %s, %s, 'person' || i || '@example.com', 'Person ' || i,"
            " (ARRAY['waiting','waiting','waiting','closed','needs_human','awaiting_approval','paused'])[1 + i %% 7],"
            " 'An idea for you', now() - i * interval '1 minute' FROM generate_series(1, %s) AS i",
            (user_id, assistant_id, threads))
        conn.execute(
            "INSERT INTO messages (user_id, thread_id, direction, author, transport, provider_message_id, from_addr,"
            " to_addr, subject, text, at)"
            " SELECT t.user_id, t.id, d.dir, CASE d.dir WHEN 'out' THEN 'assistant' ELSE 'recipient' END, 'sandbox',"
            " gen_random_uuid()::text, 'a@x', t.recipient_email, 'An idea for you', 'Hello there',"
            " t.created_at + CASE d.dir WHEN 'out' THEN interval '1 second' ELSE interval '1 hour' END"
            " FROM threads t CROSS JOIN (VALUES ('out'), ('in')) AS d(dir) WHERE t.user_id = %s",
            (user_id,))
        conn.execute(
            "INSERT INTO events (user_id, thread_id, kind, summary, detail, at)"
            " SELECT m.user_id, m.thread_id, 'decision', 'Reply read as interested',"
            " jsonb_build_object('intent', 'interested', 'confidence', 0.9, 'reason', 'They asked for more',"
            " 'message_ids', jsonb_build_array(m.id::text)), m.at FROM messages m"
            " WHERE m.user_id = %s AND m.direction = 'in'",
            (user_id,))
        conn.execute("ANALYZE")
        return str(conn.execute("SELECT id FROM threads WHERE user_id = %s ORDER BY created_at DESC LIMIT 1",
                                (user_id,)).fetchone()[0])


def timed(server: ServerProcess, path: str, runs: int) -> tuple[float, float, int]:
    """Median and max milliseconds of GET path (after one warm-up), and the page size."""
    server.client.get(path)
    samples = []
    size = 0
    for _ in range(runs):
        start = time.perf_counter()
        r = server.client.get(path)
        samples.append((time.perf_counter() - start) * 1000)
        assert r.status_code == 200, (path, r.status_code)
        size = len(r.content)
    return statistics.median(samples), max(samples), size


def main() -> None:
    """Fill, time, write the report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    import pgserver

    with tempfile.TemporaryDirectory() as tmp:
        pg = pgserver.get_server(Path(tmp) / "pg", cleanup_mode="delete")
        admin = pg.get_uri()
        name = f"ea_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = psycopg.conninfo.make_conninfo(admin, dbname=name)
        server = ServerProcess({"DATABASE_URL": url, "EA_DATA_DIR": str(Path(tmp) / "data"),
                                "EA_LOG_LEVEL": "WARNING"}, log_path=Path(tmp) / "server.log")
        server.start()
        try:
            persona = server.create_assistant(**PERSONA)
            user = str(query(url, "SELECT id FROM users")[0]["id"])
            started = time.perf_counter()
            thread_id = fill(url, user, persona["id"], args.threads)
            fill_s = time.perf_counter() - started
            deep = server.client.get("/threads")
            for _ in range(args.threads // 50 - 2):  # walk to the last pages by cursor, as "Next page" does
                nxt = re.search(r'rel="next" href="([^"]+)"', deep.text)
                deep = server.client.get(nxt.group(1).replace("&amp;", "&"))
            deep_path = re.search(r'rel="next" href="([^"]+)"', deep.text).group(1).replace("&amp;", "&")
            pages = [("Main page (stats 7 days)", "/"), ("Main page (stats 30 days)", "/?days=30"),
                     ("Threads, first page", "/threads"), ("Threads, last pages (cursor)", deep_path),
                     ("Threads, status filter", "/threads?status=needs_human"),
                     ("Threads, search by recipient", "/threads?q=person9999"),
                     ("Thread page", f"/threads/{thread_id}"),
                     ("Thread live update (changed)", f"/threads/{thread_id}/live?v=x"),
                     ("Assistants", "/assistants"), ("Settings", "/settings")]
            rows = [(label, *timed(server, path, args.runs)) for label, path in pages]
        finally:
            server.stop()
            pg.cleanup()
    lines = [
        "# Dashboard render times", "",
        f"`python -m bench.dashboard` — {args.threads:,} threads ({2 * args.threads:,} emails, "
        f"{args.threads:,} decisions) for one user, real server process in local mode, embedded PostgreSQL, "
        f"{args.runs} requests per page after a warm-up, measured from the client (HTTP on loopback).", "",
        f"Machine: {platform.machine()}, Python {platform.python_version()}; filling took {fill_s:.1f} s.", "",
        "| page | median ms | max ms | size KB |", "|---|---:|---:|---:|",
        *[f"| {label} | {median:.1f} | {worst:.1f} | {size / 1024:.0f} |" for label, median, worst, size in rows], "",
        "The thread list uses keyset pagination on `(user_id, created_at, id)`, so the last page costs the same as",
        "the first; the search is an `ILIKE` over one user's threads. The main page is the heaviest: its numbers",
        "aggregate the user's emails and decisions (agent/stats/service.py) in one pass each.", "",
    ]
    OUT.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
