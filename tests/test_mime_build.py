"""Tests for building outgoing email messages and their round trip through parsing (agent.mail.mime)."""

from __future__ import annotations

import email
import re
from datetime import UTC, datetime, timezone
from email import policy

import pytest

from agent.mail.mime import build_message, new_message_id
from tests.mime_samples import _outgoing, _parse

# ---------------------------------------------------------------- build + round trip


def test_build_message_headers_are_ascii_and_rfc2047_encoded():
    raw = build_message(_outgoing())
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    assert b"=?utf-8?" in head
    assert b"\r\nMessage-ID: <abc123@example.com>\r\n" in raw
    assert b"\r\nIn-Reply-To: <prev2@example.org>\r\n" in raw
    assert b"\r\nReferences: <first@example.com> <prev2@example.org>\r\n" in raw
    assert b"\r\nX-Outreach-Campaign: c-42\r\n" in raw
    assert raw.count(b"MIME-Version: 1.0") == 1


def test_round_trip_preserves_text_names_and_threading():
    parsed = _parse(build_message(_outgoing()))
    assert parsed.subject == "Встреча на следующей неделе — вторник?"
    assert parsed.from_addr == "anna@example.com"
    assert parsed.from_name == "Анна Иванова"
    assert parsed.to_addrs == ("ivan.petrov@example.org",)
    assert parsed.message_id == "<abc123@example.com>"
    assert parsed.in_reply_to == "<prev2@example.org>"
    assert parsed.references == ("<first@example.com>", "<prev2@example.org>")
    assert parsed.full_text == _outgoing().text
    assert parsed.text == _outgoing().text
    assert parsed.headers["Content-Type"].startswith("multipart/alternative;")
    assert parsed.auto_reply is None and parsed.bounce is None
    assert (datetime.now(UTC) - parsed.received_at).total_seconds() < 60


def test_build_message_has_plain_and_escaped_html_alternatives():
    msg = email.message_from_bytes(build_message(_outgoing()), policy=policy.default)
    assert msg.get_content_type() == "multipart/alternative"
    plain = msg.get_body(preferencelist=("plain",))
    rich = msg.get_body(preferencelist=("html",))
    assert plain.get_content().replace("\r\n", "\n").rstrip("\n") == _outgoing().text
    markup = rich.get_content()
    assert "<script>" not in markup
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; «кавычки»" in markup
    assert "<p>Здравствуйте, Иван!</p>" in markup
    assert "Давайте созвонимся во вторник.<br>" in markup
    assert '<a href="https://example.com/plan?a=1&amp;b=2">https://example.com/plan?a=1&amp;b=2</a>.' in markup


def test_build_message_without_thread_headers_or_names():
    raw = build_message(_outgoing(in_reply_to=None, references=(), extra_headers=(), from_name="", to_name="",
                                  subject="Hello", text="Hi"))
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert msg["From"] == "anna@example.com"
    assert msg["To"] == "Ivan.Petrov@Example.org"
    assert msg["In-Reply-To"] is None and msg["References"] is None


def test_build_message_subject_newlines_cannot_inject_headers():
    raw = build_message(_outgoing(subject="Hi\r\nBcc: evil@example.net"))
    assert b"\r\nBcc:" not in raw
    assert _parse(raw).subject == "Hi Bcc: evil@example.net"


def test_new_message_id_is_unique_and_uses_the_given_domain():
    ids = {new_message_id("mail.example.com") for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"<[0-9a-f]+\.[0-9a-f]{24}@mail\.example\.com>", i) for i in ids)
    assert new_message_id("ПРИМЕР.рф").endswith("@xn--e1afmkfd.xn--p1ai>")
    with pytest.raises(ValueError):
        new_message_id("bad domain>")
