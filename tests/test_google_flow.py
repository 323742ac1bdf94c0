"""Sign in with Google, send from the user's Gmail, hear the reply by push, answer in the same Gmail thread."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.fernet import Fernet, InvalidToken

from tests.support import (
    ALICE,
    PUBSUB_TOPIC,
    GoogleWorld,
    ServerProcess,
    fire_timers,
    query,
    start_outreach,
    thread_when,
    wait_until,
)


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
    logging.getLogger(__name__).info("push -> answer sent: %.2fs", latency)
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

    # A code issued to another browser's sign-in, replayed with this browser's own state: the code was bound to the
    # other browser's PKCE verifier and nonce, so it is refused and no session changes hands.
    mine = urlsplit(httpx.get(other.get("/login").headers["location"], timeout=15).headers["location"])
    theirs = parse_qs(urlsplit(httpx.get(client.get("/login").headers["location"], timeout=15)
                               .headers["location"]).query)
    injected = other.get(f"/auth/callback?code={theirs['code'][0]}&state={parse_qs(mine.query)['state'][0]}")
    assert injected.status_code == 400 and "Sign-in failed" in injected.json()["detail"]
    assert other.get("/api/threads").status_code == 401

    assert client.post("/logout").status_code == 303
    assert client.get("/api/threads").status_code == 401


def test_rotate_key_reencrypts_the_grant_and_gmail_keeps_working(
        google: GoogleWorld, google_server: ServerProcess, database_url: str, tmp_path) -> None:
    server = google_server
    alice = google.sign_in(server, ALICE)
    old_key, new_key = google.secret_key, Fernet.generate_key().decode()
    before = query(database_url, "SELECT grant_enc FROM mailboxes")[0]["grant_enc"]
    server.stop()

    env = {k: v for k, v in os.environ.items() if not k.startswith(("EA_", "GOOGLE_", "OPENAI_"))}
    env.update(server.env, EA_SECRET_KEY=f"{new_key},{old_key}")
    done = subprocess.run([sys.executable, "-m", "server.cli", "rotate-key"], env=env, capture_output=True, text=True,
                          timeout=60, cwd=Path(__file__).parent.parent)
    assert done.returncode == 0, done.stderr
    assert "re-encrypted 1 stored secret" in done.stderr and "1//" not in done.stderr + done.stdout
    after = query(database_url, "SELECT grant_enc FROM mailboxes")[0]["grant_enc"]
    assert after != before
    assert Fernet(new_key.encode()).decrypt(after.encode()) == Fernet(old_key.encode()).decrypt(before.encode())
    with pytest.raises(InvalidToken):
        Fernet(old_key.encode()).decrypt(after.encode())

    # Only the new key from now on: the stored grant still works (a new session is needed: sessions were signed
    # with the old key).
    server.start(EA_SECRET_KEY=new_key)
    assert alice.get("/api/threads").status_code == 401
    alice = google.sign_in(server, ALICE, client=httpx.Client(base_url=server.url, timeout=15))
    google.oidc.expire_access_tokens(ALICE)
    tid = start_outreach(alice, "bob@example.org")
    thread_when(alice, tid, lambda t: t["status"] == "waiting", what="sent with the rotated grant")
    assert len(google.gmail.sent(ALICE)) == 1


def test_disconnect_stops_the_watch_revokes_and_parks(google: GoogleWorld, google_server: ServerProcess,
                                                      database_url: str) -> None:
    alice = google.sign_in(google_server, ALICE)
    tid = start_outreach(alice, "bob@example.org")
    thread_when(alice, tid, lambda t: t["status"] == "waiting", what="first email")
    assert google.gmail.watch_state(ALICE) is not None
    status = alice.post("/api/mailbox/disconnect").json()
    assert status["connected"] is False and "you disconnected it" in status["reason"]
    assert google.gmail.watch_state(ALICE) is None, "users.stop was called"
    assert google.oidc.revoked, "the refresh token was revoked at Google"
    assert query(database_url, "SELECT grant_enc FROM mailboxes")[0]["grant_enc"] is None
    assert alice.get(f"/api/threads/{tid}").status_code == 401, "disconnecting Gmail also ends the session"
    [t] = query(database_url, "SELECT status, park_reason FROM threads WHERE id = %s", (tid,))
    assert t["status"] == "paused" and t["park_reason"].startswith("Gmail disconnected")
    assert google.push(google_server, ALICE).json()["status"] == "disconnected"


async def test_daily_watch_renewal_keeps_the_cursor(google: GoogleWorld, google_server: ServerProcess,
                                                    database_url: str) -> None:
    from runtime.jobs import make_app

    google.sign_in(google_server, ALICE)
    assert len(google.gmail.watch_calls) == 1
    wait_until(lambda: query(database_url, "SELECT 1 FROM procrastinate_jobs WHERE task_name = 'ea:sync_mailbox'"
                                           " AND status = 'succeeded'"), what="the sync queued at sign-in")
    google.gmail.deliver(ALICE, b"From: news@example.net\r\nTo: alice@example.com\r\nSubject: news\r\n\r\nhi\r\n")
    [before] = query(database_url, "UPDATE mailboxes SET watch_renewed_at = now() - interval '25 hours'"
                                   " RETURNING history_id, watch_expiration")
    app = make_app(database_url)
    async with app.open_async():
        await app.configure_task("ea:renew_watches").defer_async(timestamp=0)
    wait_until(lambda: len(google.gmail.watch_calls) == 2, what="the watch renewed")
    [after] = wait_until(lambda: query(database_url, "SELECT history_id, watch_expiration FROM mailboxes"
                                                     " WHERE watch_renewed_at > now() - interval '1 minute'"),
                         what="renewal recorded")
    assert after["history_id"] == before["history_id"], "renewing the watch never moves the cursor"
    assert after["watch_expiration"] >= before["watch_expiration"]
