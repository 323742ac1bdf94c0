"""Search inside mail with 10,000 threads: `python -m bench.search` appends a "Search" section to
docs/bench-dashboard.md (replacing an earlier one).

Fills a scratch database as bench.dashboard does (10,000 threads, 20,000 emails), gives every email a body of
English and Russian words (a rare word in one thread, a common one in a tenth of them), times the thread list's
search through a real server, and shows the plan PostgreSQL chooses (EXPLAIN ANALYZE).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path
from uuid import UUID

import psycopg
from psycopg import sql

from agent.threads import service
from agent.threads.service import ThreadFilter
from bench.dashboard import filled_server, timed
from tests.support import query

OUT = Path(__file__).resolve().parent.parent / "docs" / "bench-dashboard.md"
HEADING = "## Search"
WORDS = ("schedule", "clinic", "doctors", "calendar", "budget", "meeting", "недели", "встреча", "расписание",
         "клиника", "бюджет", "звонок")


def vary_bodies(url: str, user_id: str) -> None:
    """Every email gets three of WORDS; one email mentions 'zebras' and 'жирафы', every tenth 'pricing' and 'цены'."""
    words = sql.SQL("ARRAY[{}]").format(sql.SQL(", ").join(map(sql.Literal, WORDS)))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL(
            "WITH n AS (SELECT id, row_number() OVER (ORDER BY at, id) AS i FROM messages WHERE user_id = %s)"
            " UPDATE messages m SET text = 'Hello, ' || ({w})[1 + n.i %% 12] || ' ' || ({w})[1 + (n.i / 12) %% 12]"
            " || ' ' || ({w})[1 + (n.i / 144) %% 12]"
            " || CASE WHEN m.direction = 'in' AND n.i %% 20 = 0 THEN ' pricing цены' ELSE '' END"
            " || CASE WHEN n.i = 10000 THEN ' zebras жирафы' ELSE '' END FROM n WHERE m.id = n.id").format(w=words),
            (user_id,))
        conn.execute("ANALYZE")


def explain(url: str, user_id: str, words: str) -> str:
    """EXPLAIN ANALYZE of the list's first page for this search."""
    query_sql, params = service.list_query(UUID(user_id), ThreadFilter(search=words), limit=50)
    with psycopg.connect(url) as conn:
        rows = conn.execute(sql.SQL("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) {}").format(query_sql),
                            params).fetchall()
    return "\n".join(r[0] for r in rows)


def main() -> None:
    """Fill, time, explain, write the section."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with filled_server(args.threads) as f:
        server, url, user = f.server, f.url, f.user
        started = time.perf_counter()
        vary_bodies(url, user)
        fill_s = f.fill_s + time.perf_counter() - started
        cases = [("No search (reference: the same page)", "/threads"),
                 ("Rare word (one thread)", "/threads?q=zebra"), ("Rare Russian word", "/threads?q=жираф"),
                 ("Common word (a tenth of the threads)", "/threads?q=pricing"),
                 ("Common Russian word", "/threads?q=цена"), ("Two words", "/threads?q=clinic+budget"),
                 ("Recipient address", "/threads?q=person9999"),
                 ("API, rare word", "/api/threads?q=zebra"), ("CSV export, common word",
                                                              "/api/threads/export.csv?q=pricing")]
        rows = [(label, path, *timed(server, path, args.runs)) for label, path in cases]
        plan = explain(url, user, "zebra")
        index_kb = query(url, "SELECT pg_relation_size('messages_search_idx') AS n")[0]["n"] / 1024
    lines = [
        HEADING, "",
        f"`python -m bench.search` — {args.threads:,} threads and {2 * args.threads:,} emails whose bodies mix "
        f"English and Russian words, the same server and database as above, {args.runs} requests per case after a "
        f"warm-up. Machine: {platform.machine()}, Python {platform.python_version()}, load average "
        f"{os.getloadavg()[0]:.1f} when it ended (the first row is the same page without a search, for scale); "
        f"filling took {fill_s:.1f} s; "
        f"the search index (`messages_search_idx`, GIN over `to_tsvector('russian', subject || ' ' || text)`) "
        f"is {index_kb:,.0f} KB.", "",
        "| search | path | median ms | max ms | size KB |", "|---|---|---:|---:|---:|",
        *[f"| {label} | `{path}` | {median:.1f} | {worst:.1f} | {size / 1024:.0f} |"
          for label, path, median, worst, size in rows], "",
        "The plan of the list's first page for a rare word: the GIN index finds the matching emails once (a hashed",
        "subplan), then the newest threads are read by the `(user_id, created_at, id)` index as without a search.", "",
        "```", plan, "```", "",
    ]
    text = OUT.read_text(encoding="utf-8")
    if HEADING in text:
        text = text[: text.index(HEADING)]
    OUT.write_text(text.rstrip("\n") + "\n\n" + "\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main()
