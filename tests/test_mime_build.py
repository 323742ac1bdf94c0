"""Tests for building outgoing email messages and their round trip through parsing (agent.mail.mime)."""

from __future__ import annotations

import email
import re
from datetime import UTC, datetime, timezone
from email import policy

import pytest

from agent.mail.mime import build_message, new_message_id, text_to_html
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


def _lines_ok(raw: bytes) -> None:
    """All bytes ASCII, CRLF line ends only, no line over 998 characters, header lines within 78."""
    assert raw.isascii()
    lines = raw.split(b"\r\n")
    assert b"\n" not in b"".join(lines) and b"\r" not in b"".join(lines)
    assert max(map(len, lines)) <= 998
    assert max(map(len, raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n"))) <= 78


def test_non_ascii_message_round_trips_exactly_through_the_stdlib_parser():
    text = ("Добрый день, Иван!\n\nОтправляю план встречи: https://example.com/plan?a=1&b=2 — посмотрите,"
            " пожалуйста, до вторника. Если что-то не так, напишите мне.\n\nС уважением,\nАнна")
    out = _outgoing(from_name="Анна Иванова", to_name="Иван Петров", subject="Re: План встречи на вторник — «черновик»",
                    text=text, in_reply_to="<CAF+x1@mail.gmail.com>",
                    references=("<first@example.com>", "<CAF+x1@mail.gmail.com>"),
                    extra_headers=(("X-Outreach-Campaign", "c-42"), ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")))
    raw = build_message(out)
    _lines_ok(raw)
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert not msg.defects and all(not part.defects for part in msg.iter_parts())
    (sender,), (to,) = msg["From"].addresses, msg["To"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Анна Иванова", "anna@example.com")
    assert (to.display_name, to.addr_spec) == ("Иван Петров", "Ivan.Petrov@Example.org")
    assert msg["Subject"] == out.subject
    assert abs((datetime.now(UTC) - msg["Date"].datetime).total_seconds()) < 60
    assert msg["Message-ID"] == "<abc123@example.com>"
    assert msg["In-Reply-To"] == "<CAF+x1@mail.gmail.com>"
    assert msg["References"] == "<first@example.com> <CAF+x1@mail.gmail.com>"
    assert msg["X-Outreach-Campaign"] == "c-42"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["MIME-Version"] == "1.0" and raw.count(b"MIME-Version:") == 1
    plain, rich = msg.iter_parts()
    assert [plain.get_content_type(), rich.get_content_type()] == ["text/plain", "text/html"]
    assert plain.get_content_charset() == rich.get_content_charset() == "utf-8"
    assert {plain["Content-Transfer-Encoding"], rich["Content-Transfer-Encoding"]} <= {"base64", "quoted-printable"}
    # MIME text is canonical with CRLF line ends, and the last line ends too.
    assert plain.get_content() == text.replace("\n", "\r\n") + "\r\n"
    assert rich.get_content() == text_to_html(text).replace("\n", "\r\n")


def test_build_message_folds_long_headers_and_keeps_ascii_bodies_readable():
    name = "Александра Константиновна Переверзева-Сидорова 😀"
    references = tuple(f"<AM0PR01MB{i}ABCDEF@AM0PR01MB1234.eurprd01.prod.exchangelabs.com>" for i in range(4))
    text = "Hello Ivan,\n\nsee https://example.com/a/" + "x" * 120 + " and reply.\n=?utf-8?q?literal?=\n"
    subject = "A long English subject line that goes on and on, well past the seventy-eight column limit"
    raw = build_message(_outgoing(from_name=name, to_name='Smith, "Bob"', subject=subject, text=text,
                                  references=references, extra_headers=()))
    _lines_ok(raw)
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert _parse(raw).from_name == name
    assert str(msg["To"]) == '"Smith, \\"Bob\\"" <Ivan.Petrov@Example.org>'
    assert msg["To"].addresses[0].display_name == 'Smith, "Bob"'
    assert msg["Subject"] == subject and b"\r\nSubject: A long English subject" in raw
    assert msg["References"] == " ".join(references)
    plain = msg.get_body(preferencelist=("plain",))
    assert plain["Content-Transfer-Encoding"] == "quoted-printable"  # ASCII, but one line is too long for 7bit
    assert plain.get_content() == text.replace("\n", "\r\n")
    short = email.message_from_bytes(build_message(_outgoing(text="Hi Ivan,\n\nsee you.")), policy=policy.default)
    assert short.get_body(preferencelist=("plain",))["Content-Transfer-Encoding"] == "7bit"
    assert _parse(build_message(_outgoing(subject="Re: =?utf-8?q?x?="))).subject == "Re: =?utf-8?q?x?="


def test_build_message_rejects_unsafe_addresses_and_header_names():
    for addr in ("a@b\r\nBcc: evil@example.net", "a b@example.com", "<a@example.com>", "иван@example.com", "nobody"):
        with pytest.raises(ValueError):
            build_message(_outgoing(to_addr=addr))
    for name in ("Bcc: x", "X\r\nBcc", "Subject", "content-type"):
        with pytest.raises(ValueError):
            build_message(_outgoing(extra_headers=((name, "v"),)))
    raw = build_message(_outgoing(to_addr=" ivan@пример.рф ", extra_headers=(("X-Note", "a\r\nBcc: evil@example.net"),)))
    assert b"<ivan@xn--e1afmkfd.xn--p1ai>" in raw and b"\r\nBcc:" not in raw
    assert b"\r\nX-Note: a Bcc: evil@example.net\r\n" in raw


def test_new_message_id_is_unique_and_uses_the_given_domain():
    ids = {new_message_id("mail.example.com") for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"<[0-9a-f]+\.[0-9a-f]{24}@mail\.example\.com>", i) for i in ids)
    assert new_message_id("ПРИМЕР.рф").endswith("@xn--e1afmkfd.xn--p1ai>")
    with pytest.raises(ValueError):
        new_message_id("bad domain>")
