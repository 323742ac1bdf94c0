"""Start-up: what the server imports before it is ready, and the migrations' restart path."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from agent import db
from tests.support import query

ROOT = Path(__file__).resolve().parent.parent
LATE = ("googleapiclient", "google_auth_httplib2", "google.auth", "google.oauth2", "google.cloud", "cachecontrol",
        "langgraph", "langchain", "langsmith")
"""Client libraries loaded on first use (or in the background once serving), never by importing the app."""


def imported_after(statement: str) -> list[str]:
    """The modules of LATE that `statement` imports, in a fresh interpreter on this tree."""
    probe = f"import sys\n{statement}\nprint('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [m for m in out.split() if any(m == p or m.startswith(p + ".") for p in LATE)]


def test_the_app_imports_no_google_client_library_nor_langgraph() -> None:
    assert imported_after("import server.app") == []


def test_the_gmail_jobs_import_without_the_google_client_libraries() -> None:
    assert imported_after("import runtime.google.tasks") == []
    assert imported_after("import runtime.google.pubsub, agent.google.access") == []
    assert "googleapiclient.errors" in imported_after("from agent.google import gmail\ngmail.is_transient(OSError())")


def _components(url: str) -> dict[str, tuple[str, object]]:
    return {r["name"]: (r["version"], r["applied_at"])
            for r in query(url, "SELECT name, version, applied_at FROM schema_components")}


async def test_a_restart_checks_the_schema_in_one_query_and_a_change_runs_the_setup_again(database_url: str) -> None:
    checkpointer = version(db.CHECKPOINTER)
    first = _components(database_url)
    assert first[db.CHECKPOINTER][0] == checkpointer
    assert await db.apply_migrations(database_url) == []
    assert _components(database_url) == first, "an up-to-date database is not written to"

    query(database_url, "UPDATE schema_components SET version = '0.0.1' WHERE name = %s", (db.CHECKPOINTER,))
    query(database_url, "DROP INDEX procrastinate_jobs_thread_idx")
    assert await db.apply_migrations(database_url) == []
    assert _components(database_url)[db.CHECKPOINTER][0] == checkpointer
    assert query(database_url, "SELECT to_regclass('procrastinate_jobs_thread_idx') IS NOT NULL AS ok")[0]["ok"]


async def test_a_new_migration_file_is_applied_on_restart(database_url: str, tmp_path: Path) -> None:
    files = db.migration_files()
    for _, _, path in files:
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    extra = len(files) + 1
    (tmp_path / f"{extra:03d}_extra.sql").write_text("CREATE TABLE startup_extra (id int);", encoding="utf-8")
    assert await db.apply_migrations(database_url, tmp_path) == [extra]
    assert query(database_url, "SELECT to_regclass('startup_extra') IS NOT NULL AS ok")[0]["ok"]
    assert await db.apply_migrations(database_url, tmp_path) == []
