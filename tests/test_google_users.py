"""Two Google users: each sees and touches only their own mail, threads and personas."""

from __future__ import annotations

from tests.support import ALICE, CAROL, GoogleWorld, ServerProcess, query, start_outreach, thread_when


def test_two_users_see_only_their_own(google: GoogleWorld, google_server: ServerProcess, database_url: str) -> None:
    alice, carol = google.sign_in(google_server, ALICE), google.sign_in(google_server, CAROL)
    a_tid = start_outreach(alice, "bob@example.org")
    c_tid = start_outreach(carol, "bob@example.org", name="Carol's persona")
    a_thread = thread_when(alice, a_tid, lambda t: t["status"] == "waiting", what="alice's first email")
    thread_when(carol, c_tid, lambda t: t["status"] == "waiting", what="carol's first email")
    c_persona = carol.get("/api/assistants").json()
    assert [p["name"] for p in c_persona] == ["Carol's persona"]
    c_persona_id = c_persona[0]["id"]

    # Each mailbox sent only its owner's email.
    assert [m["From"].addresses[0].addr_spec for m in google.gmail.sent(ALICE)] == [ALICE]
    assert [m["From"].addresses[0].addr_spec for m in google.gmail.sent(CAROL)] == [CAROL]
    assert alice.get("/api/mailbox").json()["email"] == ALICE and carol.get("/api/mailbox").json()["email"] == CAROL

    # Another user's ids answer 404, for reading and for acting.
    assert [t["id"] for t in alice.get("/api/threads").json()["items"]] == [a_tid]
    assert c_persona_id not in [p["id"] for p in alice.get("/api/assistants").json()]
    for method, path in (("GET", f"/api/threads/{c_tid}"), ("POST", f"/api/threads/{c_tid}/pause"),
                         ("POST", f"/api/threads/{c_tid}/stop"), ("GET", f"/api/assistants/{c_persona_id}"),
                         ("PATCH", f"/api/assistants/{c_persona_id}"), ("DELETE", f"/api/assistants/{c_persona_id}")):
        r = alice.request(method, path, json={} if method != "GET" else None)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
    r = alice.post("/api/threads", json={"assistant_id": c_persona_id, "recipient_email": "eve@example.org"})
    assert r.status_code == 404
    assert carol.get(f"/api/threads/{c_tid}").json()["status"] == "waiting", "untouched by alice"

    # Carol's reply, pushed for Carol's mailbox, reaches only Carol's thread.
    [c_first] = google.gmail.sent(CAROL)
    google.reply(CAROL, c_first, "Carol's Bob here: how much?")
    assert google.push(google_server, CAROL).json()["status"] == "queued"
    thread_when(carol, c_tid, lambda t: len(t["messages"]) == 3, what="carol's answer")
    assert len(alice.get(f"/api/threads/{a_tid}").json()["messages"]) == len(a_thread["messages"]) == 1
    rows = query(database_url,
                 "SELECT t.user_id AS owner, m.user_id FROM messages m JOIN threads t ON t.id = m.thread_id")
    assert all(r["owner"] == r["user_id"] for r in rows)
    assert len(google.gmail.sent(ALICE)) == 1 and len(google.gmail.sent(CAROL)) == 2
