"""Tests for classifying automated mail: auto-replies and bounces (agent.mail.automated)."""

from __future__ import annotations

import pytest

from agent.mail.automated import bounced_recipient, detect_auto_reply, detect_bounce
from tests.mime_samples import GMAIL_REPLY, _parse

# ---------------------------------------------------------------- automated mail

@pytest.mark.parametrize("headers, subject, sender, reason", [
    ({"Auto-Submitted": "auto-replied"}, "Re: Intro", "ivan@example.org", "Auto-Submitted: auto-replied"),
    ({"auto-submitted": "Auto-Generated; owner-email=x@y"}, "Hi", "a@b.c", "Auto-Submitted: auto-generated"),
    ({"X-Autoreply": "yes"}, "Re: Intro", "ivan@example.org", "X-Autoreply header"),
    ({"X-Autorespond": "Re: Intro"}, "Re: Intro", "ivan@example.org", "X-Autorespond header"),
    ({"Precedence": "bulk"}, "News", "ivan@example.org", "Precedence: bulk"),
    ({"Precedence": "auto_reply"}, "Re: Intro", "ivan@example.org", "Precedence: auto_reply"),
    ({"List-Id": "<sales.example.org>"}, "Re: Intro", "ivan@example.org", "List-Id mailing list"),
    ({}, "Re: Intro", "No-Reply@example.org", "no-reply sender"),
    ({}, "Re: Intro", "donotreply+x@example.org", "no-reply sender"),
])
def test_detect_auto_reply_by_header_and_sender(headers, subject, sender, reason):
    assert detect_auto_reply(headers, subject, sender) == reason


@pytest.mark.parametrize("subject", [
    "Out of Office: Intro", "Automatic reply: Intro", "Auto: Intro", "Autoreply: Intro", "[Auto-Reply] Intro",
    "Абонент отсутствует: Предложение", "Автоответ: Предложение", "Abwesenheitsnotiz: Angebot",
    "Réponse automatique : Offre", "Respuesta automática: Oferta", "OOO until Monday",
])
def test_out_of_office_subjects(subject):
    assert detect_auto_reply({}, subject, "ivan@example.org") == "out-of-office subject"


@pytest.mark.parametrize("headers, subject", [
    ({"Auto-Submitted": "no"}, "Re: Intro"),
    ({"Precedence": "first-class"}, "Re: Intro"),
    ({}, "Re: Out of office hours support"),
    ({}, "Re: Предложение"),
])
def test_human_replies_are_not_automated(headers, subject):
    assert detect_auto_reply(headers, subject, "ivan@example.org") is None


def test_parse_message_flags_auto_reply_and_keeps_selected_headers():
    raw = """From: Ivan <ivan@example.org>
Subject: Automatic reply: Intro
Auto-Submitted: auto-replied
X-Autoreply: yes
Return-Path: <ivan@example.org>
X-Mailer: Something
Content-Type: text/plain

I am away until Monday.
"""
    parsed = _parse(raw)
    assert parsed.auto_reply == "Auto-Submitted: auto-replied"
    assert parsed.bounce is None
    assert parsed.headers == {"Auto-Submitted": "auto-replied", "X-Autoreply": "yes",
                              "Return-Path": "<ivan@example.org>", "Content-Type": "text/plain"}


DSN = """From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
To: anna@example.com
Subject: Delivery Status Notification (Failure)
Auto-Submitted: auto-replied
Message-ID: <dsn1@mx.google.com>
Content-Type: multipart/report; report-type=delivery-status; boundary="b1"

--b1
Content-Type: text/plain; charset="UTF-8"

Address not found
Your message wasn't delivered to nobody@example.net because the address couldn't be found.

--b1
Content-Type: message/delivery-status

Reporting-MTA: dns; googlemail.com
Arrival-Date: Mon, 06 Jan 2025 10:00:00 -0800

Final-Recipient: rfc822; Nobody@Example.net
Action: {action}
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 The email account that you tried to reach does not exist.

--b1
Content-Type: message/rfc822

From: anna@example.com
To: nobody@example.net
Subject: Intro
Message-ID: <abc123@example.com>

Original body.
--b1--
"""


def test_dsn_bounce_is_detected_with_recipient():
    raw = DSN.format(action="failed").replace("\n", "\r\n").encode()
    parsed = _parse(raw)
    assert parsed.bounce == "mailer-daemon sender"
    assert parsed.auto_reply == "Auto-Submitted: auto-replied"
    assert parsed.text.startswith("Address not found\nYour message wasn't delivered to nobody@example.net")
    assert "Original body." not in parsed.full_text
    assert bounced_recipient(raw) == "nobody@example.net"


def test_delay_notification_is_not_a_bounce():
    raw = DSN.format(action="delayed").replace("Failure", "Delay").replace("\n", "\r\n").encode()
    assert _parse(raw).bounce is None
    assert bounced_recipient(raw) is None


@pytest.mark.parametrize("headers, content_type, sender, subject, reason", [
    ({}, "multipart/report; report-type=delivery-status; boundary=x", "mx@example.net", "Hi",
     "multipart/report delivery-status"),
    ({}, "text/plain", "POSTMASTER@example.net", "Hi", "postmaster sender"),
    ({"X-Failed-Recipients": "x@example.net"}, "text/plain", "root@example.net", "Hi", "X-Failed-Recipients header"),
    ({}, "text/plain", "mx@example.net", "Undeliverable: Intro", "bounce subject"),
    ({}, "text/plain", "mx@example.net", "Mail delivery failed: returning message to sender", "bounce subject"),
    ({}, "text/plain", "mx@example.net", "Недоставленное сообщение", "bounce subject"),
    ({}, "multipart/report; report-type=disposition-notification", "ivan@example.org", "Read: Intro", None),
    ({}, "text/plain", "ivan@example.org", "Re: Intro", None),
])
def test_detect_bounce(headers, content_type, sender, subject, reason):
    assert detect_bounce(headers, content_type, sender, subject) == reason


def test_exim_bounce_recipient_from_x_failed_recipients():
    raw = (b"From: Mail Delivery System <Mailer-Daemon@mx.example.net>\r\nSubject: Mail delivery failed\r\n"
           b"X-Failed-Recipients: Gone@Example.net\r\n\r\nA message could not be delivered.\r\n")
    assert bounced_recipient(raw) == "gone@example.net"
    parsed = _parse(raw)
    assert parsed.bounce == "mailer-daemon sender"
    assert parsed.headers["X-Failed-Recipients"] == "Gone@Example.net"
    assert bounced_recipient(GMAIL_REPLY.encode()) is None
