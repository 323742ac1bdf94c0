"""Sessions live on the server: logout and disconnecting Gmail end them, and they expire when idle and at most."""

from __future__ import annotations

import base64
import hashlib
import json

import httpx

from tests.support import ALICE, GoogleWorld, ServerProcess, query


def _copy(server: ServerProcess, client: httpx.Client) -> httpx.Client:
    """Another client holding the same cookie (a stolen or copied session), sending our Origin like a browser."""
    return httpx.Client(base_url=server.url, timeout=15, cookies={"ea_session": client.cookies["ea_session"]},
                        headers={"Origin": server.url})


def _session_id(client: httpx.Client) -> str:
    """The session id inside the signed cookie (its payload is base64 JSON)."""
    payload = client.cookies["ea_session"].split(".")[0]
    return json.loads(base64.b64decode(payload + "=" * (-len(payload) % 4)))["sid"]


def test_a_cookie_copied_before_logout_is_refused_after(google: GoogleWorld, google_server: ServerProcess,
                                                         database_url: str) -> None:
    alice = google.sign_in(google_server, ALICE)
    copied = _copy(google_server, alice)
    assert copied.get("/api/threads").status_code == 200, "the copy works while the session lives"
    sid = _session_id(alice)
    stored = query(database_url, "SELECT id_hash FROM sessions")
    assert [bytes(r["id_hash"]) for r in stored] == [hashlib.sha256(sid.encode()).digest()]
    assert sid.encode() not in b"".join(bytes(r["id_hash"]) for r in stored), "only the hash is stored"

    assert alice.post("/logout").status_code == 303
    assert query(database_url, "SELECT count(*) AS n FROM sessions")[0]["n"] == 0
    assert copied.get("/api/threads").status_code == 401
    assert copied.post("/api/assistants", json={}).status_code == 401
    page = copied.get("/")
    assert page.status_code == 303 and page.headers["location"] == "/signin"
    assert copied.get("/threads", headers={"HX-Request": "true"}).headers.get("HX-Redirect") == "/signin"


def test_disconnecting_gmail_ends_every_session_of_the_user(google: GoogleWorld, google_server: ServerProcess,
                                                           database_url: str) -> None:
    laptop = google.sign_in(google_server, ALICE)
    phone = google.sign_in(google_server, ALICE)
    assert query(database_url, "SELECT count(*) AS n FROM sessions")[0]["n"] == 2
    r = laptop.post("/api/mailbox/disconnect")
    assert r.status_code == 200 and r.json()["connected"] is False
    assert laptop.get("/api/threads").status_code == 401
    assert phone.get("/api/threads").status_code == 401
    assert query(database_url, "SELECT count(*) AS n FROM sessions")[0]["n"] == 0


def test_sessions_expire_when_idle_and_after_their_absolute_lifetime(
        google: GoogleWorld, google_server: ServerProcess, database_url: str) -> None:
    # Defaults: 7 days idle, 14 days at most. Time is moved by rewriting the stored timestamps.
    alice = google.sign_in(google_server, ALICE)
    key = hashlib.sha256(_session_id(alice).encode()).digest()
    query(database_url, "UPDATE sessions SET last_seen_at = now() - interval '6 days' WHERE id_hash = %s", (key,))
    assert alice.get("/api/threads").status_code == 200, "used within the idle lifetime: still live"
    seen = query(database_url, "SELECT now() - last_seen_at < interval '1 minute' AS fresh FROM sessions")
    assert seen == [{"fresh": True}], "a request refreshes the idle clock"
    query(database_url, "UPDATE sessions SET last_seen_at = now() - interval '7 days 1 minute' WHERE id_hash = %s",
          (key,))
    assert alice.get("/api/threads").status_code == 401, "idle too long"
    assert query(database_url, "SELECT count(*) AS n FROM sessions")[0]["n"] == 0, "the expired row is dropped"

    busy = google.sign_in(google_server, ALICE)
    key = hashlib.sha256(_session_id(busy).encode()).digest()
    query(database_url, "UPDATE sessions SET created_at = now() - interval '13 days 23 hours' WHERE id_hash = %s",
          (key,))
    assert busy.get("/api/threads").status_code == 200
    query(database_url, "UPDATE sessions SET created_at = now() - interval '14 days 1 minute' WHERE id_hash = %s",
          (key,))
    assert busy.get("/api/threads").status_code == 401, "in use all along, but past its absolute lifetime"
    assert busy.get("/").headers["location"] == "/signin"
