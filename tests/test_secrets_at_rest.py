"""Secrets at rest: after a full Google-mode conversation, no token, key or secret is readable in the database."""

from __future__ import annotations

import hashlib

import psycopg

from tests.support import ALICE, GoogleWorld, ServerProcess, start_outreach, thread_when


def _dump(database_url: str) -> str:
    """Every row of every table of ours, procrastinate's and LangGraph's, as text."""
    with psycopg.connect(database_url) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT quote_ident(table_name) FROM information_schema.tables"
            " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'")]
        parts = []
        for table in tables:
            for row in conn.execute(f"SELECT t::text FROM {table} t"):  # noqa: S608 (names from the catalog)
                parts.append(row[0])
            parts.append(f"-- {table}")
    return "\n".join(parts)


def test_no_secret_is_stored_in_plain_text(google: GoogleWorld, google_server: ServerProcess, database_url: str,
                                           server_env: dict[str, str]) -> None:
    alice = google.sign_in(google_server, ALICE)
    tid = start_outreach(alice, "bob@example.org")
    thread_when(alice, tid, lambda t: t["status"] == "waiting", what="the first email")
    first = google.gmail.sent(ALICE)[0]
    google.reply(ALICE, first, "Is there a free trial?")
    google.push(google_server, ALICE)
    thread_when(alice, tid, lambda t: len(t["messages"]) == 3, what="the answer")

    dump = _dump(database_url)
    assert "-- mailboxes" in dump and "bob@example.org" in dump, "the dump holds the data"
    oidc = google.oidc
    secrets = {
        "refresh token": list(oidc._refresh),
        "access token": list(oidc._access),
        "OAuth client secret": [oidc.client_secret],
        "EA_SECRET_KEY": [k for k in server_env.get("EA_SECRET_KEY", google.secret_key).split(",") if k],
        "session secret": [hashlib.sha256(b"session:" + google.secret_key.split(",")[0].encode()).hexdigest()],
        "OpenAI key": [server_env["OPENAI_API_KEY"]],
    }
    assert secrets["refresh token"] and secrets["access token"], "the fake issued tokens"
    for what, values in secrets.items():
        for value in values:
            assert value not in dump, f"a {what} is readable in the database"
