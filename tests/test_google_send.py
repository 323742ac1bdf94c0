"""Gmail send is not idempotent: a failure after Gmail stored the message is looked up, never re-posted blindly."""

from __future__ import annotations

import time

from tests.support import ALICE, GoogleWorld, ServerProcess, query, start_outreach, thread_when

SEND = "/messages/send"


def _sends(google: GoogleWorld) -> list[int]:
    return [r["status"] for r in google.gmail.requests if r["path"].endswith(SEND)]


def _lookups(google: GoogleWorld) -> list[dict]:
    return [r for r in google.gmail.requests
            if r["path"].endswith("/messages") and "rfc822msgid:" in (r["query"].get("q") or [""])[0]]


def test_error_after_gmail_stored_the_send_gives_one_message(google: GoogleWorld, google_server: ServerProcess,
                                                            database_url: str) -> None:
    alice = google.sign_in(google_server, ALICE)
    google.gmail.inject_errors(503, 1, path_contains=SEND, after_store=True)
    tid = start_outreach(alice, "bob@example.org")
    t = thread_when(alice, tid, lambda t: t["status"] == "waiting", what="first email despite the lost answer")
    time.sleep(1)  # a second post would land now
    [first] = google.gmail.sent(ALICE)
    assert first["To"].addresses[0].addr_spec == "bob@example.org", "the recipient gets exactly one message"
    assert _sends(google) == [503], "the stored message is found, not sent again"
    [lookup] = _lookups(google)
    assert lookup["query"]["q"] == [f"rfc822msgid:{first['Message-ID'].strip('<>')} in:sent"]
    assert [e["kind"] for e in t["events"]].count("sent") == 1
    assert [m["direction"] for m in t["messages"]] == ["out"]
    stored = query(database_url, "SELECT provider_message_id, status FROM outbox")
    assert stored == [{"provider_message_id": google.gmail.messages(ALICE, "SENT")[0].id, "status": "sent"}]
    assert "not sending again" in google_server.log()

    # The answer hits the same fault and still goes out once, in the same Gmail thread.
    google.gmail.inject_errors(503, 1, path_contains=SEND, after_store=True)
    google.reply(ALICE, first, "What does it cost?")
    assert google.push(google_server, ALICE).json()["status"] == "queued"
    t = thread_when(alice, tid, lambda t: len(t["messages"]) == 3 and t["status"] == "waiting", what="one answer")
    time.sleep(1)
    sent = google.gmail.messages(ALICE, "SENT")
    assert len(sent) == 2 and sent[1].thread_id == sent[0].thread_id
    assert _sends(google) == [503, 503] and len(_lookups(google)) == 2
    assert [e["kind"] for e in t["events"]].count("sent") == 2
    assert [m["direction"] for m in t["messages"]] == ["out", "in", "out"]


def test_error_before_gmail_stored_the_send_is_sent_after_the_lookup(google: GoogleWorld,
                                                                      google_server: ServerProcess) -> None:
    alice = google.sign_in(google_server, ALICE)
    google.gmail.inject_errors(503, 2, path_contains=SEND)
    tid = start_outreach(alice, "bob@example.org")
    t = thread_when(alice, tid, lambda t: t["status"] == "waiting", what="first email despite errors")
    assert len(google.gmail.sent(ALICE)) == 1
    assert _sends(google) == [503, 503, 200]
    lookups = _lookups(google)
    assert len(lookups) == 2 and all(r["status"] == 200 for r in lookups), "every retry looks first"
    assert [e["kind"] for e in t["events"]].count("sent") == 1
    assert "is not in sent mail; sending again" in google_server.log()
