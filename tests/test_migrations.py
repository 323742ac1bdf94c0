"""Migrations: every numbered file applies to an empty database, once."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent import db
from tests.support import query


async def test_all_migrations_apply_to_an_empty_database(empty_database_url: str) -> None:
    files = db.migration_files()
    assert [n for n, _, _ in files] == list(range(1, len(files) + 1))
    applied = await db.apply_migrations(empty_database_url)
    assert applied == [n for n, _, _ in files]
    assert [r["version"] for r in query(empty_database_url, "SELECT version FROM schema_migrations ORDER BY 1")] == applied
    tables = {r["t"] for r in query(empty_database_url,
                                    "SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public'")}
    assert {"users", "assistants", "threads", "messages", "outbox", "events", "suppressions", "sandbox_mail",
            "procrastinate_jobs", "checkpoints", "checkpoint_writes"} <= tables
    assert await db.apply_migrations(empty_database_url) == [], "a second run applies nothing"


def test_badly_numbered_migrations_are_refused(tmp_path: Path) -> None:
    (tmp_path / "001_a.sql").write_text("SELECT 1;")
    (tmp_path / "003_c.sql").write_text("SELECT 1;")
    with pytest.raises(RuntimeError, match="without gaps"):
        db.migration_files(tmp_path)
    (tmp_path / "oops.sql").write_text("SELECT 1;")
    with pytest.raises(RuntimeError, match="NNN_name.sql"):
        db.migration_files(tmp_path)
