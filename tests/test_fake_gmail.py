"""The fake Gmail API answers the real googleapiclient (with google-auth credentials) like Gmail does."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
import requests
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from tests.google_fakes_shared import ALICE, GMAIL_MODIFY, READ, SEND, FakeGmail, FakeGoogleOIDC, oidc  # noqa: F401


@pytest.fixture
def gmail(oidc: FakeGoogleOIDC) -> Iterator[FakeGmail]:
    """A started fake Gmail trusting oidc's access tokens."""
    with FakeGmail(oidc.email_for_access_token, scope_lookup=oidc.scopes_for_access_token) as fake:
        yield fake


def service(gmail: FakeGmail, creds: Credentials):
    """A googleapiclient Gmail service pointed at the fake, built exactly as the app does."""
    return build("gmail", "v1", credentials=creds, static_discovery=True,
                 client_options={"api_endpoint": gmail.base_url})


@pytest.fixture
def alice_api(oidc: FakeGoogleOIDC, gmail: FakeGmail):
    """Alice's Gmail service with send + readonly scopes."""
    return service(gmail, Credentials(token=oidc.access_token_for(ALICE, ["openid", SEND, READ])))


def raw_of(msg: EmailMessage) -> str:
    """base64url of a message, as messages.send wants."""
    return base64.urlsafe_b64encode(msg.as_bytes()).decode()


def outgoing(subject: str = "Quick question", msgid: str = "<out-1@assistant.example>") -> EmailMessage:
    """A multipart/alternative message with an attachment."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"], msg["Message-ID"] = ALICE, "bob@example.org", subject, msgid
    msg.set_content("Hi Bob,\nare you free on Tuesday?\n")
    msg.add_alternative("<p>Hi Bob, are you free on <b>Tuesday</b>?</p>", subtype="html")
    msg.add_attachment(b"%PDF-1.4 fake", maintype="application", subtype="pdf", filename="deck.pdf")
    return msg


def reply_bytes(to_msgid: str, subject: str = "Re: Quick question") -> bytes:
    """Bob's reply referencing to_msgid."""
    return (f"From: Bob <bob@example.org>\r\nTo: {ALICE}\r\nSubject: {subject}\r\n"
            f"Message-ID: <reply-1@example.org>\r\nIn-Reply-To: {to_msgid}\r\nReferences: {to_msgid}\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\nTuesday works & I'm in.\r\n").encode()


# ---- Gmail ---------------------------------------------------------------------------------------

def test_send_then_get_in_every_format(alice_api, gmail: FakeGmail) -> None:
    sent = alice_api.users().messages().send(userId="me", body={"raw": raw_of(outgoing())}).execute()
    assert sent["labelIds"] == ["SENT"] and sent["threadId"] == sent["id"]
    messages = alice_api.users().messages()

    full = messages.get(userId="me", id=sent["id"], format="full").execute()
    assert full["payload"]["mimeType"] == "multipart/mixed"
    alternative, attachment = full["payload"]["parts"]
    plain = alternative["parts"][0]
    assert (plain["partId"], plain["mimeType"]) == ("0.0", "text/plain")
    assert base64.urlsafe_b64decode(plain["body"]["data"]) == b"Hi Bob,\nare you free on Tuesday?\n"
    assert attachment["filename"] == "deck.pdf" and attachment["body"]["size"] == 13
    data = messages.attachments().get(userId="me", messageId=sent["id"], id=attachment["body"]["attachmentId"]).execute()
    assert base64.urlsafe_b64decode(data["data"]) == b"%PDF-1.4 fake"
    assert full["snippet"] == "Hi Bob, are you free on Tuesday?"

    meta = messages.get(userId="me", id=sent["id"], format="metadata", metadataHeaders=["Subject", "Message-ID"]).execute()
    assert meta["payload"]["headers"] == [{"name": "Subject", "value": "Quick question"},
                                          {"name": "Message-ID", "value": "<out-1@assistant.example>"}]
    minimal = messages.get(userId="me", id=sent["id"], format="minimal").execute()
    assert "payload" not in minimal and minimal["historyId"] == str(gmail.history_id(ALICE))
    raw = messages.get(userId="me", id=sent["id"], format="raw").execute()
    assert b"Subject: Quick question" in base64.urlsafe_b64decode(raw["raw"])
    assert [m["Subject"] for m in gmail.sent(ALICE)] == ["Quick question"]
    assert gmail.requests[0]["path"] == "/gmail/v1/users/me/messages/send"


def test_send_stamps_from_and_message_id_and_needs_recipient(alice_api, gmail: FakeGmail) -> None:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "Alice <spoof@elsewhere.example>", "bob@example.org", "x"
    msg.set_content("y")
    alice_api.users().messages().send(userId="me", body={"raw": raw_of(msg)}).execute()
    stored = gmail.sent(ALICE)[0]
    assert stored["From"] == f"Alice <{ALICE}>" and stored["Message-ID"].endswith("@mail.gmail.com>")
    del msg["To"]
    with pytest.raises(HttpError) as err:
        alice_api.users().messages().send(userId="me", body={"raw": raw_of(msg)}).execute()
    assert (err.value.status_code, err.value.reason) == (400, "Recipient address required")


def test_send_thread_rules(alice_api, gmail: FakeGmail) -> None:
    first = alice_api.users().messages().send(userId="me", body={"raw": raw_of(outgoing())}).execute()
    follow = outgoing("Re: Quick question", "<out-2@assistant.example>")
    follow["In-Reply-To"] = follow["References"] = "<out-1@assistant.example>"
    kept = alice_api.users().messages().send(userId="me", body={"raw": raw_of(follow),
                                                                "threadId": first["threadId"]}).execute()
    assert kept["threadId"] == first["threadId"]
    bare = alice_api.users().messages().send(userId="me", body={"raw": raw_of(outgoing("Other", "<o3@a.example>")),
                                                                "threadId": first["threadId"]}).execute()
    assert bare["threadId"] == bare["id"] != first["threadId"]
    with pytest.raises(HttpError) as err:
        alice_api.users().messages().send(userId="me", body={"raw": raw_of(follow), "threadId": "ffff"}).execute()
    assert err.value.status_code == 404


def test_list_by_rfc822msgid_in_sent_from_and_paging(alice_api, gmail: FakeGmail) -> None:
    sent_ids = [alice_api.users().messages().send(userId="me", body={"raw": raw_of(outgoing(f"S{i}", f"<m{i}@a.example>"))}
                                                  ).execute()["id"] for i in range(3)]
    inbound = gmail.deliver(ALICE, reply_bytes("<m0@a.example>"))
    messages = alice_api.users().messages()
    hit = messages.list(userId="me", q="rfc822msgid:<m1@a.example>").execute()
    assert hit == {"messages": [{"id": sent_ids[1], "threadId": sent_ids[1]}], "resultSizeEstimate": 1}
    assert messages.list(userId="me", q="rfc822msgid:nope@x").execute() == {"resultSizeEstimate": 0}
    assert [m["id"] for m in messages.list(userId="me", q="from:bob@example.org").execute()["messages"]] == [inbound]
    assert [m["id"] for m in messages.list(userId="me", labelIds=["INBOX"]).execute()["messages"]] == [inbound]
    page1 = messages.list(userId="me", q="in:sent", maxResults=2).execute()
    page2 = messages.list(userId="me", q="in:sent", maxResults=2, pageToken=page1["nextPageToken"]).execute()
    assert [m["id"] for m in page1["messages"] + page2["messages"]] == sent_ids[::-1]
    assert "nextPageToken" not in page2
    assert gmail.requests[-1]["query"]["pageToken"] == [page1["nextPageToken"]]


def test_history_after_deliver_and_expiry(alice_api, gmail: FakeGmail) -> None:
    sent = alice_api.users().messages().send(userId="me", body={"raw": raw_of(outgoing())}).execute()
    start = alice_api.users().getProfile(userId="me").execute()["historyId"]
    reply_id = gmail.deliver(ALICE, reply_bytes("<out-1@assistant.example>"))
    history = alice_api.users().history().list(userId="me", startHistoryId=start, historyTypes="messageAdded",
                                               labelId="INBOX").execute()
    assert history["historyId"] == str(int(start) + 1)
    [record] = history["history"]
    assert record["messagesAdded"] == [{"message": {"id": reply_id, "threadId": sent["threadId"],
                                                    "labelIds": ["INBOX", "UNREAD"]}}]
    got = alice_api.users().messages().get(userId="me", id=reply_id).execute()
    assert got["snippet"] == "Tuesday works &amp; I&#39;m in."
    gmail.expire_history_before(int(start) + 1)
    with pytest.raises(HttpError) as err:
        alice_api.users().history().list(userId="me", startHistoryId=start).execute()
    assert (err.value.status_code, err.value.reason) == (404, "Requested entity was not found.")


def test_injected_429_then_num_retries_succeeds(alice_api, gmail: FakeGmail) -> None:
    gmail.inject_errors(429, 3, path_contains="/profile")
    with pytest.raises(HttpError) as err:
        alice_api.users().getProfile(userId="me").execute()
    assert err.value.status_code == 429 and err.value.resp["retry-after"] == "1"
    assert err.value.error_details[0]["reason"] == "rateLimitExceeded"
    req = alice_api.users().getProfile(userId="me")
    req._sleep = lambda seconds: None  # googleapiclient would otherwise back off for real
    assert req.execute(num_retries=3)["emailAddress"] == ALICE
    assert [r["status"] for r in gmail.requests] == [429, 429, 429, 200]


def test_injected_error_after_store_keeps_the_send_and_deleted_messages_404(alice_api, gmail: FakeGmail) -> None:
    gmail.inject_errors(503, 1, path_contains="/messages/send", after_store=True)
    with pytest.raises(HttpError) as err:
        alice_api.users().messages().send(userId="me", body={"raw": raw_of(outgoing())}).execute()
    assert err.value.status_code == 503
    [stored] = gmail.messages(ALICE, "SENT")
    hit = alice_api.users().messages().list(userId="me", q="rfc822msgid:<out-1@assistant.example> in:sent").execute()
    assert hit["messages"] == [{"id": stored.id, "threadId": stored.thread_id}]
    start = alice_api.users().getProfile(userId="me").execute()["historyId"]
    reply_id = gmail.deliver(ALICE, reply_bytes("<out-1@assistant.example>"))
    gmail.delete(ALICE, reply_id)
    history = alice_api.users().history().list(userId="me", startHistoryId=start).execute()
    assert [r["messagesAdded"][0]["message"]["id"] for r in history["history"]] == [reply_id]
    with pytest.raises(HttpError) as err:
        alice_api.users().messages().get(userId="me", id=reply_id).execute()
    assert err.value.status_code == 404
    assert [r["status"] for r in gmail.requests] == [503, 200, 200, 200, 404]


def test_expired_access_token_is_refreshed_by_google_auth(oidc: FakeGoogleOIDC, gmail: FakeGmail) -> None:
    stale = oidc.access_token_for(ALICE, [READ])
    oidc.expire_access_tokens(ALICE)
    creds = Credentials(token=stale, refresh_token=oidc.refresh_token_for(ALICE, [READ]), token_uri=oidc.token_url,
                        client_id=oidc.client_id, client_secret=oidc.client_secret)
    assert service(gmail, creds).users().getProfile(userId="me").execute()["emailAddress"] == ALICE
    assert [r["status"] for r in gmail.requests] == [401, 200]
    assert gmail.requests[0]["headers"]["authorization"] == f"Bearer {stale}"


def test_modify_records_label_history_and_revoked_token_gets_401(oidc, gmail: FakeGmail) -> None:
    inbound = gmail.deliver(ALICE, reply_bytes("<none@x.example>"))
    start = gmail.history_id(ALICE)
    modifier = service(gmail, Credentials(token=oidc.access_token_for(ALICE, [GMAIL_MODIFY])))
    modifier.users().messages().modify(userId="me", id=inbound, body={"removeLabelIds": ["UNREAD"]}).execute()
    history = modifier.users().history().list(userId="me", startHistoryId=start, historyTypes="labelRemoved").execute()
    assert history["history"][0]["labelsRemoved"][0]["labelIds"] == ["UNREAD"]
    assert gmail.messages(ALICE)[0].label_ids == ["INBOX"]
    token = oidc.access_token_for(ALICE, [READ])
    assert requests.post(oidc.revoke_url, data={"token": token}, timeout=5).status_code == 200
    resp = requests.get(gmail.base_url + "/gmail/v1/users/me/profile", headers={"Authorization": f"Bearer {token}"},
                        timeout=5)
    assert (resp.status_code, resp.json()["error"]["status"]) == (401, "UNAUTHENTICATED")


def test_scopes_and_delegation_enforced(oidc: FakeGoogleOIDC, gmail: FakeGmail) -> None:
    send_only = service(gmail, Credentials(token=oidc.access_token_for(ALICE, [SEND])))
    send_only.users().messages().send(userId="me", body={"raw": raw_of(outgoing())}).execute()
    with pytest.raises(HttpError) as err:
        send_only.users().messages().list(userId="me").execute()
    assert (err.value.status_code, err.value.error_details[0]["reason"]) == (403, "insufficientPermissions")
    reader = service(gmail, Credentials(token=oidc.access_token_for(ALICE, [READ])))
    with pytest.raises(HttpError) as err:
        reader.users().getProfile(userId="bob@example.org").execute()
    assert (err.value.status_code, err.value.reason) == (403, f"Delegation denied for {ALICE}")


def test_watch_and_stop(alice_api, gmail: FakeGmail) -> None:
    watch = alice_api.users().watch(userId="me", body={"topicName": "projects/p1/topics/gmail",
                                                       "labelIds": ["INBOX"]}).execute()
    assert watch["historyId"] == str(gmail.history_id(ALICE)) and int(watch["expiration"]) > 0
    assert gmail.watch_state(ALICE)["labelIds"] == ["INBOX"]
    assert alice_api.users().stop(userId="me").execute() == ""  # 204, no body
    assert gmail.watch_state(ALICE) is None
    with pytest.raises(HttpError) as err:
        alice_api.users().watch(userId="me", body={"topicName": "gmail"}).execute()
    assert err.value.status_code == 400
