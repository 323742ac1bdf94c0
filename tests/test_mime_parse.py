"""Tests for parsing incoming email: quotes, signatures, charsets and malformed input (agent.mail.mime)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timezone

import pytest

from agent.mail.automated import bounced_recipient
from agent.mail.mime import extract_new_text, html_to_text, parse_message
from tests.mime_samples import GMAIL_REPLY, _parse

# ---------------------------------------------------------------- parsing

def test_gmail_reply_keeps_only_new_lines_and_parses_headers():
    parsed = _parse(GMAIL_REPLY)
    assert parsed.text == "Sounds good, Tuesday at 3pm works for me.\nPlease send the invite."
    assert "> Would you like to meet next week?" in parsed.full_text
    assert parsed.from_addr == "ivan@example.org"
    assert parsed.from_name == "Ivan Petrov"
    assert parsed.to_addrs == ("anna@example.com", "boss@example.org")
    assert parsed.subject == "Re: Meeting next week"
    assert parsed.message_id == "<CAF+reply@mail.gmail.com>"
    assert parsed.in_reply_to == "<abc123@example.com>"
    assert parsed.references == ("<first@example.com>", "<abc123@example.com>")
    assert parsed.received_at == datetime(2025, 1, 7, 6, 15, tzinfo=UTC)
    assert parsed.headers == {"Content-Type": 'text/plain; charset="UTF-8"'}
    assert parsed.provider_message_id == "p1" and parsed.provider_thread_id == "t1"


def test_explicit_received_at_wins_over_date_header():
    when = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)
    assert _parse(GMAIL_REPLY, received_at=when).received_at == when


def test_html_only_gmail_reply_is_converted_and_quote_dropped():
    raw = """From: ivan@example.org
Subject: Re: Hi
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: quoted-printable

<html><head><style>p {color: red}</style></head><body><div dir=3D"ltr">Yes, let&#39;s do it!<br>See <a href=3D"=
https://example.org/cal">my calendar</a>.<p>Second&nbsp;paragraph</p><div class=3D"gmail_signature">Ivan | CEO</div></div>
<br><div class=3D"gmail_quote"><div class=3D"gmail_attr">On Mon, Jan 6, 2025 at 10:00 AM Anna &lt;anna@example.=
com&gt; wrote:<br></div><blockquote class=3D"gmail_quote">Hi Ivan,<br>shall we meet?</blockquote></div></body></html>
"""
    parsed = _parse(raw)
    assert parsed.text == "Yes, let's do it!\nSee my calendar (https://example.org/cal).\n\nSecond paragraph"
    assert "Hi Ivan,\nshall we meet?" in parsed.full_text
    assert "Ivan | CEO" in parsed.full_text
    assert "color: red" not in parsed.full_text


def test_outlook_html_reply_drops_everything_after_the_reply_header():
    markup = ('<div>Works for me.</div><div id="appendonsend"></div><hr><div id="divRplyFwdMsg"><b>From:</b> Anna'
              '<br><b>Sent:</b> Monday</div><div>Old text</div>')
    assert html_to_text(markup, drop_quotes=True) == "Works for me."
    assert html_to_text("<ul><li>one</li><li>two</li></ul><table><tr><td>a</td><td>b</td></tr></table>") == \
        "- one\n- two\n\na b"


def test_koi8r_quoted_printable_reply_with_encoded_subject():
    body = "Добрый день!\nДа, нам интересно.\n\n> старый текст\n".encode("koi8-r")
    subject = base64.b64encode("Re: Предложение".encode("koi8-r")).decode()
    qp = "".join(f"={b:02X}" if b > 127 or b == 61 else chr(b) for b in body).replace("\n", "\r\n")
    raw = (f"From: =?koi8-r?B?{base64.b64encode('Пётр'.encode('koi8-r')).decode()}?= <petr@example.ru>\r\n"
           f"Subject: =?KOI8-R?B?{subject}?=\r\nContent-Type: text/plain; charset=koi8-r\r\n"
           f"Content-Transfer-Encoding: quoted-printable\r\n\r\n{qp}").encode("ascii")
    parsed = _parse(raw)
    assert parsed.subject == "Re: Предложение"
    assert parsed.from_name == "Пётр"
    assert parsed.text == "Добрый день!\nДа, нам интересно."
    assert parsed.full_text == "Добрый день!\nДа, нам интересно.\n\n> старый текст"


def test_windows1251_base64_reply_with_russian_quote_header():
    body = ("Спасибо, подходит.\n\n"
            "6 янв. 2025 г., в 10:00, Анна Иванова <anna@example.com> написал:\n\n> Здравствуйте!\n").encode("cp1251")
    raw = (b"From: petr@example.ru\r\nSubject: Re: test\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: text/plain; charset=\"windows-1251\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           + base64.encodebytes(body))
    parsed = _parse(raw)
    assert parsed.text == "Спасибо, подходит."
    assert "Здравствуйте!" in parsed.full_text


@pytest.mark.parametrize("quote_header", [
    "6 янв. 2025 г., в 10:00, Анна <anna@example.com> написал(а):",
    "06.01.2025 10:00, Анна Иванова пишет:",
    "пн, 6 янв. 2025 г. в 10:00, Anna Ivanova <anna@example.com>:",
    "Am Mo., 6. Jan. 2025 um 10:00 Uhr schrieb Anna <anna@example.com>:",
    "Le lun. 6 janv. 2025 à 10:00, Anna <anna@example.com> a écrit :",
    "El lun, 6 ene 2025 a las 10:00, Anna (<anna@example.com>) escribió:",
])
def test_localized_quote_headers_are_stripped(quote_header):
    assert extract_new_text(f"Договорились.\n\n{quote_header}\n> старое письмо\n") == "Договорились."


def test_outlook_original_message_reply():
    text = ("Thanks for reaching out, we'll pass.\n\n-----Original Message-----\nFrom: Anna <anna@example.com>\n"
            "Sent: Monday, January 6, 2025 10:00 AM\nTo: Ivan\nSubject: Intro\n\nHi Ivan, quick intro.")
    assert extract_new_text(text) == "Thanks for reaching out, we'll pass."


def test_outlook_header_block_without_separator_in_english_and_russian():
    english = ("Please call me.\n\n________________________________\nFrom: Anna <anna@example.com>\n"
               "Sent: Monday, January 6, 2025 10:00\nTo: Ivan\nSubject: Intro\n\nOld")
    russian = ("Позвоните мне.\n\nОт: Анна <anna@example.com>\nОтправлено: 6 января 2025 г. 10:00\n"
               "Тема: Привет\n\nСтарое")
    assert extract_new_text(english) == "Please call me."
    assert extract_new_text(russian) == "Позвоните мне."


@pytest.mark.parametrize("body, expected", [
    ("Sure, let's talk.\n\n-- \nIvan Petrov\nCEO, Example Inc.", "Sure, let's talk."),
    ("Sure, let's talk.\n\nBest regards,\nIvan Petrov\nCEO\n+1 555 0100", "Sure, let's talk."),
    ("Да, давайте.\n\nС уважением,\nИван Петров\nДиректор", "Да, давайте."),
    ("OK by me.\n\nSent from my iPhone", "OK by me."),
    ("Thanks, that works for me.\nSee you Tuesday.", "Thanks, that works for me.\nSee you Tuesday."),
    ("Thanks!", "Thanks!"),
    ("- point one\n- point two", "- point one\n- point two"),
])
def test_signatures_are_stripped_but_prose_is_kept(body, expected):
    assert extract_new_text(body) == expected


def test_inline_quote_lines_are_removed():
    assert extract_new_text("> Are you free?\nYes.\n> Which day?\nTuesday.") == "Yes.\nTuesday."


def test_text_plain_is_preferred_and_attachments_are_ignored():
    raw = """From: ivan@example.org
Subject: Re: docs
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/plain; charset=utf-8

Plain version.
--inner
Content-Type: text/html; charset=utf-8

<p>HTML version.</p>
--inner--
--outer
Content-Type: text/plain; charset=utf-8
Content-Disposition: attachment; filename="notes.txt"

Attachment text.
--outer--
"""
    parsed = _parse(raw)
    assert parsed.text == "Plain version."
    assert parsed.full_text == "Plain version."
    assert parsed.headers["Content-Type"] == 'multipart/mixed; boundary="outer"'


def test_raw_utf8_headers_are_decoded():
    raw = "From: Иван Петров <ivan@example.ru>\nTo: Анна <anna@example.com>\nSubject: Привет\n\nТекст".encode()
    parsed = parse_message(raw, provider_message_id="p", provider_thread_id=None)
    assert (parsed.from_name, parsed.subject, parsed.text) == ("Иван Петров", "Привет", "Текст")
    assert parsed.provider_thread_id is None


# ---------------------------------------------------------------- malformed input

@pytest.mark.parametrize("raw", [
    b"",
    b"\x00\xff\xfe garbage \x80\x81\r\n\r\n\xff",
    b"no headers at all, just text",
    b"Subject: =?x-unknown?B?AAAA?=\r\nFrom: <<<>>>\r\nDate: not a date\r\n"
    b"Content-Type: text/plain; charset=x-no-such-charset\r\nContent-Transfer-Encoding: base64\r\n\r\n!!notbase64",
    b"Content-Type: multipart/alternative; boundary=zzz\r\n\r\n--zzz\r\nContent-Type: text/html\r\n\r\n<p>unclosed",
])
def test_malformed_messages_never_raise(raw):
    parsed = parse_message(raw, provider_message_id="bad", provider_thread_id=None)
    assert parsed.provider_message_id == "bad"
    assert isinstance(parsed.text, str) and isinstance(parsed.subject, str)
    assert parsed.received_at.tzinfo is not None
    assert bounced_recipient(raw) is None


def test_missing_headers_fall_back_to_empty_values():
    parsed = parse_message(b"\r\nJust a body.", provider_message_id="m", provider_thread_id=None)
    assert (parsed.from_addr, parsed.from_name, parsed.subject, parsed.to_addrs) == ("", "", "", ())
    assert (parsed.message_id, parsed.in_reply_to, parsed.references) == (None, None, ())
    assert parsed.text == "Just a body."
    assert parsed.headers == {"Content-Type": "text/plain"}


def test_wrong_charset_is_tolerated():
    raw = "Subject: x\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nПривет, это UTF-8".encode()
    assert _parse(raw).text == "Привет, это UTF-8"
    latin = b"Subject: x\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nCaf\xe9 cr\xe8me"
    assert _parse(latin).text == "Café crème"
    broken = b"Subject: x\r\nContent-Type: text/plain\r\n\r\nbad \xff\xfe bytes"
    assert _parse(broken).text == "bad \ufffd\ufffd bytes"


def test_bottom_posted_reply_keeps_the_answer_below_the_quote():
    body = ("On Mon, Jan 6, 2025 at 10:00 AM Anna <anna@example.com> wrote:\n> Are you free on Tuesday?\n\n"
            "Yes, after 2pm.\n\n-- \nIvan")
    assert extract_new_text(body) == "Yes, after 2pm."


def test_forward_without_comment_has_no_new_text():
    body = ("-----Original Message-----\nFrom: Anna <anna@example.com>\nSent: Monday\nTo: Ivan\nSubject: Intro\n\n"
            "Old body")
    assert extract_new_text(body) == ""


def test_bare_message_ids_are_bracketed():
    parsed = _parse("Message-ID: abc@host.example\nIn-Reply-To: Re: your mail <x@y> of Monday\nSubject: s\n\nHi")
    assert parsed.message_id == "<abc@host.example>"
    assert parsed.in_reply_to == "<x@y>"
