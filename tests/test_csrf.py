"""A session cookie alone cannot change anything through the API: a CSRF header or same-origin headers are needed."""

from __future__ import annotations

import re

import httpx

from tests.support import ALICE, PERSONA, GoogleWorld, ServerProcess, query


def test_a_bare_cookie_cannot_write_but_same_origin_proofs_can(google: GoogleWorld, google_server: ServerProcess,
                                                                database_url: str) -> None:
    server = google_server
    alice = google.sign_in(server, ALICE)
    bare = httpx.Client(base_url=server.url, timeout=15, cookies={"ea_session": alice.cookies["ea_session"]})
    assert bare.get("/api/assistants").status_code == 200, "reading needs only the session"

    for method, path, kw in (("POST", "/api/assistants", {"json": PERSONA}),
                             ("PATCH", "/api/settings/sending", {"json": {"daily_cap": 5}}),
                             ("POST", "/api/suppressions", {"json": {"email": "x@example.org"}}),
                             ("POST", "/api/mailbox/disconnect", {})):
        r = bare.request(method, path, **kw)
        assert r.status_code == 403, (method, path, r.status_code, r.text)
        assert "X-CSRF-Token" in r.json()["detail"] and "same-origin" in r.json()["detail"]
    r = bare.post("/api/assistants", json=PERSONA, headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    r = bare.post("/api/assistants", json=PERSONA, headers={"X-CSRF-Token": "forged"})
    assert r.status_code == 403
    assert query(database_url, "SELECT count(*) AS n FROM assistants")[0]["n"] == 0
    assert query(database_url, "SELECT count(*) AS n FROM suppressions")[0]["n"] == 0
    assert alice.get("/api/mailbox").json()["connected"] is True

    # Each proof alone is enough: our Origin, Sec-Fetch-Site: same-origin, or the session's CSRF token.
    assert bare.post("/api/assistants", json=PERSONA, headers={"Origin": server.url}).status_code == 201
    assert bare.post("/api/assistants", json=PERSONA, headers={"Sec-Fetch-Site": "same-origin"}).status_code == 201
    page = bare.get("/assistants/new")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text) or re.search(
        r'name="csrf-token" content="([^"]+)"', page.text)
    assert token, page.text[:500]
    assert bare.post("/api/assistants", json=PERSONA, headers={"X-CSRF-Token": token.group(1)}).status_code == 201
    # A foreign Origin stays refused by the Origin check, whatever else is sent.
    r = bare.post("/api/assistants", json=PERSONA, headers={"Origin": "https://evil.example",
                                                            "X-CSRF-Token": token.group(1)})
    assert r.status_code == 403
    assert query(database_url, "SELECT count(*) AS n FROM assistants")[0]["n"] == 3


def test_without_a_session_the_answer_stays_401(google_server: ServerProcess) -> None:
    r = httpx.post(google_server.url + "/api/assistants", json=PERSONA, timeout=15)
    assert r.status_code == 401
