"""Inbound Gmail sync: polling alone, an expired cursor, a revoked grant, and what the model gets to read."""

from __future__ import annotations

import re

from tests.support import ALICE, GoogleWorld, ServerProcess, query, start_outreach, thread_when, wait_until

UNTRUSTED = re.compile(r"<untrusted_email>\n(.*?)\n</untrusted_email>", re.S)


def _first_email(google: GoogleWorld, client, recipient: str, **persona) -> tuple[str, object]:
    tid = start_outreach(client, recipient, **persona)
    thread_when(client, tid, lambda t: t["status"] == "waiting", what=f"first email to {recipient}")
    sent = next(m for m in google.gmail.sent(ALICE) if m["To"].addresses[0].addr_spec == recipient)
    return tid, sent


def test_polling_only_without_a_topic(google: GoogleWorld, server_env: dict[str, str], tmp_path) -> None:
    server = google.server(server_env, tmp_path / "server.log", EA_PUBSUB_TOPIC="", EA_PUBSUB_PUSH_AUDIENCE="",
                           EA_PUBSUB_PUSH_SERVICE_ACCOUNT="", EA_MAIL_POLL_SECONDS="5")
    try:
        alice = google.sign_in(server, ALICE)
        tid, first = _first_email(google, alice, "bob@example.org")
        assert google.gmail.watch_calls == [], "no topic: no users.watch"
        google.reply(ALICE, first, "Is there a free trial?")
        t = thread_when(alice, tid, lambda t: len(t["messages"]) == 3, what="answer found by polling", timeout=20)
        assert t["messages"][1]["text"] == "Is there a free trial?"
        assert google.gmail.messages(ALICE, "SENT")[1].thread_id == google.gmail.messages(ALICE, "SENT")[0].thread_id
    finally:
        server.stop()


def test_expired_history_cursor_resyncs_and_finds_the_reply(google: GoogleWorld, google_server: ServerProcess,
                                                            database_url: str) -> None:
    alice = google.sign_in(google_server, ALICE)
    tid, first = _first_email(google, alice, "bob@example.org")
    cursor = query(database_url, "SELECT history_id FROM mailboxes")[0]["history_id"]
    google.gmail.deliver(ALICE, b"From: news@example.net\r\nTo: alice@example.com\r\nSubject: news\r\n\r\nhi\r\n")
    google.reply(ALICE, first, "Could you call me tomorrow?")
    google.gmail.expire_history_before(google.gmail.history_id(ALICE))
    assert google.push(google_server, ALICE).json()["status"] == "queued"
    t = thread_when(alice, tid, lambda t: len(t["messages"]) == 3, what="answer after resync")
    assert t["messages"][1]["text"] == "Could you call me tomorrow?"
    assert "bounded resync" in google_server.log()
    history = [r for r in google.gmail.requests if r["path"].endswith("/history")]
    assert history[-1]["status"] == 404 and history[-1]["query"]["startHistoryId"] == [str(cursor)]
    new_cursor = query(database_url, "SELECT history_id FROM mailboxes")[0]["history_id"]
    assert new_cursor >= google.gmail.history_id(ALICE) - 1 and new_cursor > cursor
    assert query(database_url, "SELECT count(*) AS n FROM messages WHERE direction = 'in'")[0]["n"] == 1, \
        "mail that belongs to no thread is not stored"
    raw_reads = [r for r in google.gmail.requests if "/messages/" in r["path"] and r["query"].get("format") == ["raw"]]
    assert len(raw_reads) == 1, "only the reply's body is downloaded, once"


def test_revoked_grant_parks_threads_and_reconnect_continues(google: GoogleWorld, google_server: ServerProcess,
                                                             database_url: str) -> None:
    alice = google.sign_in(google_server, ALICE)
    tid, first = _first_email(google, alice, "bob@example.org")
    google.oidc.revoke_all_for(ALICE)
    google.reply(ALICE, first, "Do you integrate with our EHR?")
    assert google.push(google_server, ALICE).json()["status"] == "queued"

    status = wait_until(lambda: (m := alice.get("/api/mailbox").json()) and not m["connected"] and m,
                        what="mailbox disconnected")
    assert status["reason"].startswith("Gmail disconnected") and "/login" in status["reason"]
    t = thread_when(alice, tid, lambda t: t["status"] == "paused", what="thread parked")
    assert t["park_reason"] == status["reason"]
    assert any(e["kind"] == "parked" and "Gmail disconnected" in e["summary"] for e in t["events"])
    assert google.push(google_server, ALICE).json()["status"] == "disconnected"
    assert query(database_url, "SELECT failures FROM threads")[0]["failures"] == 0, "parked once, no retry loop"
    assert google_server.proc.poll() is None, "no crash"
    assert len(google.gmail.sent(ALICE)) == 1

    # Reconnecting resumes the thread; the reply that came meanwhile is answered in the same Gmail thread.
    google.sign_in(google_server, ALICE, client=alice)
    assert alice.get("/api/mailbox").json()["connected"] is True
    t = thread_when(alice, tid, lambda t: len(t["messages"]) == 3 and t["status"] == "waiting", what="continued")
    assert t["park_reason"] is None and t["messages"][1]["text"] == "Do you integrate with our EHR?"
    sent = google.gmail.messages(ALICE, "SENT")
    assert len(sent) == 2 and sent[1].thread_id == sent[0].thread_id


def test_the_model_reads_only_new_text_and_automated_mail_is_not_answered(
        google: GoogleWorld, google_server: ServerProcess, database_url: str, model) -> None:
    _fake, script = model
    alice = google.sign_in(google_server, ALICE)
    threads = {name: _first_email(google, alice, f"{name}@example.org")
               for name in ("html", "koi", "quoted", "ooo", "bounce")}

    def reply_raw(name: str, headers: str, body: bytes) -> bytes:
        first = threads[name][1]
        common = (f"To: {ALICE}\r\nMessage-ID: <{name}-r@example.org>\r\nIn-Reply-To: {first['Message-ID']}\r\n"
                  f"References: {first['Message-ID']}\r\n")
        return (common + headers + "\r\n").encode() + body

    subj = threads["html"][1]["Subject"]
    google.reply(ALICE, None, raw=reply_raw("html", f"From: html@example.org\r\nSubject: Re: {subj}\r\n"
                                            "Content-Type: text/html; charset=utf-8\r\n",
        b"<div>Yes, what is the price?</div><div class=\"gmail_quote\"><div>On Mon, Anna wrote:</div>"
        b"<blockquote>First email draft, the whole history</blockquote></div>"))
    koi_body = ("Здравствуйте! Сколько это стоит?\n\n"
                "26 нояб. 2026 г., в 10:00, Анна <alice@example.com> написал(а):\n> Старое письмо\n").encode("koi8-r")
    google.reply(ALICE, None, raw=reply_raw("koi", "From: =?koi8-r?b?8KPU0g==?= <koi@example.org>\r\n"
                                            "Subject: =?koi8-r?b?8sU6IPDSxcTMz9bFzsnF?=\r\n"
                                            "Content-Type: text/plain; charset=koi8-r\r\n"
                                            "Content-Transfer-Encoding: 8bit\r\n", koi_body))
    google.reply(ALICE, threads["quoted"][1],
                 "Sounds great, is Tuesday possible?\n\nOn Mon, 23 Nov 2026 at 10:00, Anna <alice@example.com> wrote:\n"
                 "> Hello,\n>\n> First email draft.\n>\n> Anna\n")
    google.reply(ALICE, threads["ooo"][1], "I am out of the office until Monday.",
                 headers={"Auto-Submitted": "auto-replied"})
    google.reply(ALICE, None, raw=reply_raw(
        "bounce", "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\r\n"
        "Subject: Delivery Status Notification (Failure)\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=delivery-status; boundary=b1\r\n",
        b"--b1\r\nContent-Type: text/plain\r\n\r\nAddress not found: bounce@example.org\r\n"
        b"--b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; googlemail.com\r\n\r\n"
        b"Final-Recipient: rfc822; bounce@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n--b1--\r\n"))
    assert google.push(google_server, ALICE).json()["status"] == "queued"

    for name in ("html", "koi", "quoted"):
        thread_when(alice, threads[name][0], lambda t: len(t["messages"]) == 3, what=f"answer to {name}")
    ooo = thread_when(alice, threads["ooo"][0], lambda t: any(e["kind"] == "decision" for e in t["events"]),
                      what="out-of-office decision")
    bounce = thread_when(alice, threads["bounce"][0], lambda t: t["status"] == "closed", what="bounce closes")

    seen = [UNTRUSTED.search(c["user"]).group(1) for c in script.calls if c["schema"] == "Classification"]
    assert sorted(seen) == sorted(["Yes, what is the price?", "Здравствуйте! Сколько это стоит?",
                                   "Sounds great, is Tuesday possible?"]), seen
    koi = alice.get(f"/api/threads/{threads['koi'][0]}").json()["messages"][1]
    assert (koi["subject"], koi["text"]) == ("Ре: Предложение", "Здравствуйте! Сколько это стоит?")
    [stored] = query(database_url, "SELECT from_addr, full_text FROM messages WHERE subject = %s", (koi["subject"],))
    assert stored["from_addr"] == "koi@example.org" and "> Старое письмо" in stored["full_text"]
    assert len(ooo["messages"]) == 2 and ooo["status"] == "waiting"
    decision = next(e for e in ooo["events"] if e["kind"] == "decision")
    assert decision["detail"]["intent"] == "auto_reply" and decision["detail"]["source"] == "rules"
    assert "Automated reply" in decision["detail"]["reason"]
    assert bounce["close_reason"] == "bounced" and len(bounce["messages"]) == 2
    assert bounce["messages"][1]["bounce"] and ooo["messages"][1]["auto_reply"]
    assert any(e["kind"] == "decision" and e["detail"]["intent"] == "bounce" for e in bounce["events"])
    assert len(google.gmail.sent(ALICE)) == 5 + 3, "automated mail gets no answer"


def test_a_message_gone_before_it_is_read_does_not_block_the_sync(google: GoogleWorld, google_server: ServerProcess,
                                                                  database_url: str) -> None:
    alice = google.sign_in(google_server, ALICE)
    tid, first = _first_email(google, alice, "bob@example.org")
    cursor = query(database_url, "SELECT history_id FROM mailboxes")[0]["history_id"]
    in_thread = google.reply(ALICE, first, "Sorry, wrong message.")
    unrelated = google.gmail.deliver(ALICE, b"From: x@example.net\r\nTo: alice@example.com\r\nSubject: hi\r\n\r\n.\r\n")
    google.gmail.delete(ALICE, in_thread)
    google.gmail.delete(ALICE, unrelated)
    google.reply(ALICE, first, "Does it work offline?")
    after_reply = google.gmail.history_id(ALICE)
    assert google.push(google_server, ALICE).json()["status"] == "queued"

    t = thread_when(alice, tid, lambda t: len(t["messages"]) == 3 and t["status"] == "waiting", what="the answer")
    assert t["messages"][1]["text"] == "Does it work offline?"
    gone = [r for r in google.gmail.requests
            if r["path"].endswith((f"/messages/{in_thread}", f"/messages/{unrelated}"))]
    assert {(r["path"].rsplit("/", 1)[1], r["status"]) for r in gone} == {(in_thread, 404), (unrelated, 404)}
    new_cursor = query(database_url, "SELECT history_id FROM mailboxes")[0]["history_id"]
    assert new_cursor >= after_reply > cursor, "the cursor moved past the gone messages"
    assert google.push(google_server, ALICE, after_reply).json()["status"] == "up_to_date"
    log = google_server.log()
    assert f"message {in_thread} is gone" in log and f"message {unrelated} is gone" in log
    assert len(google.gmail.sent(ALICE)) == 2


def test_an_unreadable_message_is_kept_retried_and_the_next_reply_answered(google: GoogleWorld,
                                                                          google_server: ServerProcess,
                                                                          database_url: str) -> None:
    alice = google.sign_in(google_server, ALICE)
    tid, first = _first_email(google, alice, "bob@example.org")
    bad = google.reply(ALICE, first, "This one Gmail will not hand over at first.")
    google.gmail.inject_errors(400, 1, path_contains=f"/messages/{bad}", reason="invalidArgument")
    google.reply(ALICE, first, "Can I pay yearly?")
    after_reply = google.gmail.history_id(ALICE)
    assert google.push(google_server, ALICE).json()["status"] == "queued"

    t = thread_when(alice, tid, lambda t: len(t["messages"]) == 3 and t["status"] == "waiting", what="the answer")
    assert t["messages"][1]["text"] == "Can I pay yearly?"
    assert query(database_url, "SELECT history_id FROM mailboxes")[0]["history_id"] >= after_reply
    assert f"message {bad} could not be read; kept for the next sync" in google_server.log()
    [kept] = query(database_url, "SELECT * FROM inbound_pending")
    assert kept["provider_message_id"] == bad and kept["reason"] == "unreadable" and "HTTP 400" in kept["last_error"]

    query(database_url, "UPDATE inbound_pending SET next_attempt_at = now()")  # its backoff has passed
    google.reply(ALICE, first, "Any news?")
    assert google.push(google_server, ALICE).json()["status"] == "queued"
    t = thread_when(alice, tid, lambda t: any(m["text"] == "This one Gmail will not hand over at first."
                                              for m in t["messages"]), what="the kept message")
    assert query(database_url, "SELECT count(*) AS n FROM inbound_pending")[0]["n"] == 0


def test_a_reply_to_an_unrecorded_send_is_matched_by_its_outbox_message_id(
        google: GoogleWorld, google_server: ServerProcess, database_url: str) -> None:
    alice = google.sign_in(google_server, ALICE)
    tid, first = _first_email(google, alice, "bob@example.org")
    # As if the server died after Gmail accepted the email and before it was recorded: only the outbox knows it.
    query(database_url, "UPDATE threads SET provider_thread_id = NULL")
    query(database_url, "DELETE FROM messages WHERE direction = 'out'")
    google.reply(ALICE, first, "Yes, tell me more.")
    assert google.push(google_server, ALICE).json()["status"] == "queued"
    t = thread_when(alice, tid, lambda t: any(m["text"] == "Yes, tell me more." for m in t["messages"]),
                    what="the reply matched through the outbox")
    assert t["id"] == str(tid)


def test_an_outage_while_reading_a_message_keeps_the_cursor_and_retries(google: GoogleWorld,
                                                                        google_server: ServerProcess,
                                                                        database_url: str) -> None:
    alice = google.sign_in(google_server, ALICE)
    tid, first = _first_email(google, alice, "bob@example.org")
    cursor = query(database_url, "SELECT history_id FROM mailboxes")[0]["history_id"]
    reply = google.reply(ALICE, first, "Is support included?")
    google.gmail.inject_errors(503, 6, path_contains=f"/messages/{reply}")  # every retry of one sync run
    assert google.push(google_server, ALICE).json()["status"] == "queued"

    t = thread_when(alice, tid, lambda t: len(t["messages"]) == 3, what="the answer after the retried sync",
                    timeout=60)
    assert t["messages"][1]["text"] == "Is support included?"
    reads = [r["status"] for r in google.gmail.requests if r["path"].endswith(f"/messages/{reply}")]
    assert reads[:7] == [503] * 6 + [200], "the failed run gave up on the message, the retried run read it"
    history = [r for r in google.gmail.requests if r["path"].endswith("/history")]
    assert [r["query"]["startHistoryId"] for r in history[-2:]] == [[str(cursor)]] * 2, "the cursor stayed put"
    assert not [e for e in t["events"] if e["kind"] == "receive_failed"]
