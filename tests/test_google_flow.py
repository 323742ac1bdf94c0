"""Sign in with Google, send from the user's Gmail, hear the reply by push, answer in the same Gmail thread."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import httpx
from cryptography.fernet import Fernet

from tests.support import (ALICE, PUBSUB_TOPIC, GoogleWorld, ServerProcess, fire_timers, query, start_outreach,
                           thread_when, wait_until)


def test_sign_in_send_reply_push_answer_in_same_gmail_thread(google: GoogleWorld, google_server: ServerProcess,
                                                             database_url: str) -> None:
    server, gmail = google_server, google.gmail
    alice = google.sign_in(server, ALICE)
    auth = google.oidc.authorize_requests[-1]
    assert set(auth["scope"].split()) == {"openid", "email", "profile", "https://www.googleapis.com/auth/gmail.send",
                                          "https://www.googleapis.com/auth/gmail.readonly"}
    assert (auth["access_type"], auth["prompt"], auth["include_granted_scopes"]) == ("offline", "consent", "true")
    assert auth["nonce"] and auth["state"] and auth["code_challenge_method"] == "S256"

    # The grant is stored encrypted: a raw read of the table shows no token.
    [row] = query(database_url, "SELECT m.*, row_to_json(m)::text AS everything FROM mailboxes m")
    assert "1//" not in row["everything"] and "ya29." not in row["everything"]
    grant = Fernet(google.secret_key.encode()).decrypt(row["grant_enc"].encode()).decode()
    assert '"refresh_token": "1//' in grant
    assert (row["status"], row["email"]) == ("connected", ALICE)
    assert gmail.watch_state(ALICE)["topicName"] == PUBSUB_TOPIC
    assert row["history_id"] == gmail.history_id(ALICE)

    tid = start_outreach(alice, "bob@example.org", sender_name="Анна из Acme", signature="Анна", follow_up_count=1)
    t = thread_when(alice, tid, lambda x: x["status"] == "waiting", what="first email sent")
    assert query(database_url, "SELECT transport FROM threads")[0]["transport"] == "gmail"

    # The fake Gmail received a well-formed first email from Alice's account.
    [first] = gmail.sent(ALICE)
    assert first["To"].addresses[0].addr_spec == "bob@example.org"
    assert first["From"].addresses[0].addr_spec == ALICE and first["From"].addresses[0].display_name == "Анна из Acme"
    assert first["Message-ID"] == t["messages"][0]["message_id"] and first["Message-ID"].endswith("@127.0.0.1>")
    assert first.get_content_type() == "multipart/alternative"
    plain, html = first.get_payload()
    assert (plain.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    assert plain.get_content_charset() == "utf-8" and plain.get_content().rstrip().endswith("Анна")
    first_gmail = gmail.messages(ALICE, "SENT")[0]

    # A reply lands in the mailbox; a push arrives; the assistant answers in the same Gmail thread.
    reply_id = google.reply(ALICE, first, "Sounds good. How much does it cost?")
    pushed_at = time.monotonic()
    r = google.push(server, ALICE)
    assert r.status_code == 200 and r.json()["status"] == "queued"
    t = wait_until(lambda: len(gmail.sent(ALICE)) == 2 and alice.get(f"/api/threads/{tid}").json(), what="answer")
    latency = time.monotonic() - pushed_at
    reply = gmail.messages(ALICE)[1]
    assert reply.id == reply_id and reply.thread_id == first_gmail.thread_id
    answer_msg = gmail.messages(ALICE, "SENT")[1]
    answer = answer_msg.parsed
    assert answer_msg.thread_id == first_gmail.thread_id, "the answer stays in the Gmail thread"
    assert answer["In-Reply-To"] == reply.parsed["Message-ID"]
    assert answer["References"].split() == [first["Message-ID"], reply.parsed["Message-ID"]]
    assert answer["Subject"] == "Re: " + first["Subject"]
    assert answer["To"].addresses[0].addr_spec == "bob@example.org"
    print(f"push -> answer sent: {latency:.2f}s")  # noqa: T201 (shown with -s; the measured latency)
    assert latency < 10

    # A follow-up to our own last message goes to the recipient, never to ourselves, in the same thread.
    thread_when(alice, tid, lambda x: x["status"] == "waiting", what="waiting again")
    assert fire_timers(database_url, tid) == 1
    wait_until(lambda: len(gmail.sent(ALICE)) == 3, what="follow-up")
    follow = gmail.messages(ALICE, "SENT")[2]
    assert follow.thread_id == first_gmail.thread_id
    assert follow.parsed["To"].addresses[0].addr_spec == "bob@example.org"
    assert follow.parsed["In-Reply-To"] == answer["Message-ID"]
    assert follow.parsed["Subject"] == "Re: " + first["Subject"]
    assert "1//" not in server.log() and "ya29." not in server.log(), "tokens are never logged"


def test_callback_checks_state_and_logout_ends_session(google: GoogleWorld, google_server: ServerProcess) -> None:
    server = google_server
    assert server.client.get("/api/threads").status_code == 401
    client = google.sign_in(server, ALICE)
    assert client.get("/api/threads").status_code == 200
    assert client.get("/api/mailbox").json()["email"] == ALICE
    cookie = client.cookies.get("ea_session")
    assert cookie
    assert "httponly" in client.get("/login").headers["set-cookie"].lower()
    assert "samesite=lax" in client.get("/login").headers["set-cookie"].lower()

    # A callback whose state was not issued to this browser is refused; no session is created.
    other = httpx.Client(base_url=server.url, timeout=15)
    start = client.get("/login")
    consent = httpx.get(start.headers["location"], timeout=15)
    bad = other.get(consent.headers["location"])
    assert bad.status_code == 400 and "Sign-in failed" in bad.json()["detail"]
    assert other.get("/api/threads").status_code == 401
    query_state = parse_qs(urlsplit(consent.headers["location"]).query)["state"][0]
    forged = client.get(f"/auth/callback?code=4/forged&state={query_state}x")
    assert forged.status_code == 400

    assert client.post("/logout").status_code == 303
    assert client.get("/api/threads").status_code == 401
