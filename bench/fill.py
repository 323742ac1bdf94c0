"""Bench helpers: bulk waiting threads cloned in SQL from a real one, and database sizes and counters."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

CHECKPOINT_TABLES = ("checkpoints", "checkpoint_blobs", "checkpoint_writes")


def _columns(conn: psycopg.Connection[Any], table: str) -> list[str]:
    rows = conn.execute("SELECT column_name FROM information_schema.columns WHERE table_name = %s"
                        " AND table_schema = 'public' ORDER BY ordinal_position", (table,)).fetchall()
    return [r[0] for r in rows]


def clone_waiting(url: str, *, template: str, count: int, batch: str) -> None:
    """Insert `count` copies of a waiting thread and of its queued jobs (timers), as the code under test stored them.

    Whatever one real waiting thread owns (its row with follow_up_due_at, and any procrastinate job queued for it)
    is copied with a new id, so each version is filled with its own representation of a waiting thread.
    """
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")  # no per-row NOTIFY triggers for the filler
        cols = _columns(conn, "threads")
        exprs = [sql.SQL("gen_random_uuid()") if c == "id" else
                 sql.SQL("'fill-' || {} || '-' || g || '@fill.test'").format(sql.Literal(batch))
                 if c == "recipient_email" else sql.SQL("NULL") if c == "provider_thread_id" else sql.Identifier(c)
                 for c in cols]
        conn.execute(sql.SQL("INSERT INTO threads ({}) SELECT {} FROM threads, generate_series(1, %s) g"
                             " WHERE threads.id = %s").format(
            sql.SQL(", ").join(map(sql.Identifier, cols)), sql.SQL(", ").join(exprs)), (count, template))
        jcols = [c for c in _columns(conn, "procrastinate_jobs") if c != "id"]
        jexprs = [sql.SQL("jsonb_set(j.args, '{thread_id}', to_jsonb(n.id::text))") if c == "args" else
                  sql.SQL("replace(j.queueing_lock, %(t)s, n.id::text)") if c == "queueing_lock" else
                  sql.SQL("j.{}").format(sql.Identifier(c)) for c in jcols]
        conn.execute(sql.SQL("INSERT INTO procrastinate_jobs ({}) SELECT {} FROM procrastinate_jobs j, threads n"
                             " WHERE j.args->>'thread_id' = %(t)s AND j.status = 'todo'"
                             " AND n.recipient_email LIKE %(like)s").format(
            sql.SQL(", ").join(map(sql.Identifier, jcols)), sql.SQL(", ").join(jexprs)),
            {"t": template, "like": f"fill-{batch}-%"})
        conn.execute("ANALYZE")


def sizes(url: str) -> dict[str, int]:
    """pg_total_relation_size of every table in the public schema, after VACUUM FULL (live data only)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM FULL")
        rows = conn.execute("SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c"
                            " JOIN pg_namespace n ON n.oid = c.relnamespace"
                            " WHERE n.nspname = 'public' AND c.relkind = 'r'").fetchall()
    return {name: size for name, size in rows}


def commits(url: str) -> int:
    """xact_commit of the database so far."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        return conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()").fetchone()[0]


def checkpoint_rows(url: str) -> dict[str, int]:
    """Rows in each checkpoint table."""
    with psycopg.connect(url, autocommit=True) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in CHECKPOINT_TABLES}
