"""Build outgoing RFC 5322 messages and parse inbound ones into InboundMessage (their new text: reply_text)."""

from __future__ import annotations

import base64
import binascii
import codecs
import email
import html
import logging
import re
import secrets
import time
from dataclasses import fields
from datetime import UTC, datetime
from email import policy
from email.header import decode_header, make_header
from email.message import Message
from email.utils import format_datetime, getaddresses, parsedate_to_datetime
from typing import Any

from agent.mail.automated import detect_auto_reply, detect_bounce, dsn_recipients
from agent.mail.models import InboundMessage, OutgoingMessage
from agent.mail.reply_text import extract_new_text, html_to_text, tidy
from agent.text import without_controls

log = logging.getLogger(__name__)

_FOLD_AT = 78  # RFC 5322: header lines and 7bit body lines stay within 78 characters
_ID_WORD = 900  # a plain message id may pass column 78, never 998: longer ones are encoded
_FIELD_NAME_RE = re.compile(r"[!-9;-~]+")  # RFC 5322 field name: printable ASCII but ":"
_BUILT_HEADERS = frozenset({"from", "to", "subject", "date", "message-id", "in-reply-to", "references",
                            "mime-version", "content-type", "content-transfer-encoding"})
# local@domain with no space, control or special character, so nothing in it can end the '<...>' or the header
_ADDR_SPEC_RE = re.compile(r'[^\x00-\x20\x7f<>()\[\],;:"\\@]+@[^\x00-\x20\x7f<>()\[\],;:"\\@]+')
_SPECIALS_RE = re.compile(r'[][\\()<>@,:;".]')  # a display name with one of these is written as a quoted string
_KEPT_HEADERS = ("Auto-Submitted", "X-Autoreply", "X-Autorespond", "Precedence", "List-Id",
                 "List-Unsubscribe", "Return-Path", "X-Failed-Recipients")
_DOMAIN_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$")
_URL_RE = re.compile(r"\b(?:https?://|www\.)[^\s<>\"']+[^\s<>\"'.,;:!?)\]}]", re.IGNORECASE)
_PARAGRAPH_RE = re.compile(r"\n[ \t]*\n+")
_MSGID_RE = re.compile(r"<[^<>\s]+>")
_SPACES_RE = re.compile(r"\s+")


def new_message_id(domain: str) -> str:
    """A unique '<time.random@domain>' Message-ID that reveals neither hostname nor pid."""
    domain = (domain or "").strip().strip(".")
    if domain and not domain.isascii():
        domain = domain.encode("idna").decode("ascii")
    if not _DOMAIN_RE.match(domain):
        raise ValueError(f"invalid Message-ID domain: {domain!r}")
    return f"<{int(time.time() * 1000):x}.{secrets.token_hex(12)}@{domain.lower()}>"


def _one_line(value: str) -> str:
    """Collapse whitespace (incl. CR/LF) so a value cannot break out of its header."""
    return _SPACES_RE.sub(" ", value or "").strip()


def _linkify(text: str) -> str:
    """HTML-escape text and turn URLs into links."""
    out, pos = [], 0
    for match in _URL_RE.finditer(text):
        url = match.group(0)
        href = url if "://" in url else f"https://{url}"
        out += [html.escape(text[pos:match.start()]), f'<a href="{html.escape(href)}">{html.escape(url)}</a>']
        pos = match.end()
    out.append(html.escape(text[pos:]))
    return "".join(out)


def text_to_html(text: str) -> str:
    """A simple HTML rendering of plain text: escaped, paragraphs, <br> line breaks, linked URLs."""
    paragraphs = [p.strip("\n") for p in _PARAGRAPH_RE.split(text.replace("\r\n", "\n").strip())]
    body = "\n".join(f"<p>{_linkify(p).replace(chr(10), '<br>' + chr(10))}</p>" for p in paragraphs if p.strip())
    return f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head><body>\n{body}\n</body></html>\n'


def build_message(msg: OutgoingMessage) -> bytes:
    """Serialize an OutgoingMessage as RFC 5322 bytes (multipart/alternative, RFC 2047 headers, CRLF)."""
    head = [_address("From", msg.from_name, msg.from_addr), _address("To", msg.to_name, msg.to_addr),
            _text("Subject", msg.subject), f"Date: {format_datetime(datetime.now(UTC))}\r\n",
            _text("Message-ID", msg.message_id, _ID_WORD)]
    if msg.in_reply_to:
        head.append(_text("In-Reply-To", msg.in_reply_to, _ID_WORD))
    if msg.references:
        head.append(_text("References", " ".join(msg.references), _ID_WORD))
    head += [_extra(name, value) for name, value in msg.extra_headers]
    # '=_' occurs in no quoted-printable or base64 text, and 128 random bits in no 7bit one by chance.
    boundary = f"=_{secrets.token_hex(16)}"
    head.append(f'MIME-Version: 1.0\r\nContent-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n\r\n')
    delimiter = f"--{boundary}".encode()
    parts = (_text_part("plain", msg.text), _text_part("html", text_to_html(msg.text)))
    body = b"".join(delimiter + b"\r\n" + part + b"\r\n" for part in parts) + delimiter + b"--\r\n"
    return "".join(head).encode("ascii") + body


def _text_part(subtype: str, text: str) -> bytes:
    """A UTF-8 text part: 7bit when ASCII with short lines, else the shorter of quoted-printable and base64."""
    lines = text.encode("utf-8").splitlines()
    body = b"\r\n".join(lines) + b"\r\n"
    if body.isascii() and max(map(len, lines), default=0) <= _FOLD_AT:
        cte = "7bit"
    else:
        qp, b64 = binascii.b2a_qp(body, istext=True), base64.encodebytes(body).replace(b"\n", b"\r\n")
        cte, body = ("quoted-printable", qp) if len(qp) <= len(b64) else ("base64", b64)
    return f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: {cte}\r\n\r\n'.encode() + body


def _plain(value: str, longest: int = _FOLD_AT - 1) -> bool:
    """Whether a one-lined value can be written as is: ASCII, no '=?' a reader would decode, every word fits."""
    return value.isascii() and "=?" not in value and all(len(word) <= longest for word in value.split(" "))


def _text(name: str, value: str, longest: int = _FOLD_AT - 1) -> str:
    """An unstructured header, one-lined; RFC 2047 encoded words unless the value is plain."""
    value = _one_line(value)
    return _fold(name, value.split() if _plain(value, longest) else _encoded_words(value, _FOLD_AT - len(name) - 2))


def _address(name: str, display_name: str, addr: str) -> str:
    """An address header: the display name quoted or RFC 2047-encoded as needed, then '<addr>'."""
    addr, display_name = _addr_spec(addr), _one_line(display_name)
    if not display_name:
        return _fold(name, [addr])
    if not _plain(display_name):
        words = _encoded_words(display_name, _FOLD_AT - len(name) - 2)
    elif _SPECIALS_RE.search(display_name):
        words = ('"' + display_name.replace("\\", "\\\\").replace('"', '\\"') + '"').split()
    else:
        words = display_name.split()
    return _fold(name, [*words, f"<{addr}>"])


def _addr_spec(addr: str) -> str:
    """A bare address safe to put in a header, an internationalized domain in its ASCII (IDNA) form."""
    local, _, domain = addr.strip().rpartition("@")
    if not domain.isascii():
        domain = domain.encode("idna").decode("ascii")
    if not local.isascii() or not _ADDR_SPEC_RE.fullmatch(f"{local}@{domain}"):
        raise ValueError(f"invalid email address: {addr!r}")
    return f"{local}@{domain}"


def _extra(name: str, value: str) -> str:
    """A caller-given header; a value carrying its own header name (VerbatimHeader) is kept unfolded and unencoded."""
    if not _FIELD_NAME_RE.fullmatch(name) or name.lower() in _BUILT_HEADERS:
        raise ValueError(f"invalid extra header name: {name!r}")
    line = f"{name}: {_one_line(value)}"
    if str(getattr(value, "name", "")).lower() == name.lower() and line.isascii() and len(line) <= 998:
        return line + "\r\n"
    return _text(name, value)


def _encoded_words(text: str, room: int) -> list[str]:
    """RFC 2047 'B' encoded words of whole UTF-8 characters; the first fits in room columns, the others in 75."""
    data, words = text.encode("utf-8"), []
    while data:
        cut = max(room - 12, 8) // 4 * 3  # bytes whose base64 fits beside the 12 characters of '=?utf-8?b??='
        if cut < len(data):
            while data[cut] & 0xC0 == 0x80:  # a UTF-8 continuation byte: cut before its character instead
                cut -= 1
        words.append(f"=?utf-8?b?{base64.b64encode(data[:cut]).decode()}?=")
        data, room = data[cut:], 75
    return words


def _fold(name: str, words: list[str]) -> str:
    """The header line 'Name: words', folded before a word that would pass column 78 (a longer word keeps its line)."""
    lines = [f"{name}:"]
    for i, word in enumerate(words):
        if i and len(lines[-1]) + 1 + len(word) > _FOLD_AT:
            lines.append("")
        lines[-1] += " " + word
    return "\r\n".join(lines) + "\r\n"


def _unescape_8bit(value: str) -> str:
    """Recover raw UTF-8 header bytes that the parser kept as surrogate escapes."""
    if any("\udc80" <= ch <= "\udcff" for ch in value):
        return value.encode("ascii", "surrogateescape").decode("utf-8", "replace")
    return value


def _decode_words(value: str) -> str:
    """Decode RFC 2047 encoded words; on a broken encoding keep the raw text."""
    value = _unescape_8bit(str(value or ""))
    try:
        return str(make_header(decode_header(value)))
    except (LookupError, ValueError, UnicodeError, AssertionError, TypeError):
        log.debug("undecodable header value %r kept raw", value[:80])
        return value


def _raw_all(msg: Message, name: str) -> list[str]:
    """Every raw value of a header, with 8-bit (SMTPUTF8) bytes recovered as UTF-8."""
    return [_unescape_8bit(str(v)) for k, v in msg.raw_items() if k.lower() == name.lower()]


def _header(msg: Message, name: str) -> str:
    """The first value of a header, RFC 2047-decoded on one line, or ''."""
    values = _raw_all(msg, name)
    return _one_line(_decode_words(values[0])) if values else ""


def _decode_payload(part: Message) -> str:
    """Transfer-decode a text part and decode its charset, tolerating wrong or missing charsets."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    candidates = []
    for charset in (part.get_content_charset(), "utf-8"):
        try:
            candidates.append(codecs.lookup(charset).name if charset else None)
        except LookupError:
            log.debug("unknown charset %r", charset)
    candidates = [c for c in candidates if c]
    for charset in candidates:
        try:
            return payload.decode(charset)
        except UnicodeDecodeError:
            continue
    return payload.decode(candidates[0] if candidates else "utf-8", errors="replace")


def _text_parts(msg: Message) -> tuple[str, str]:
    """The first text/plain and text/html bodies, skipping attachments and embedded messages."""
    found = {"text/plain": "", "text/html": ""}
    stack = [msg]
    while stack:
        part = stack.pop(0)
        ctype = part.get_content_type()
        if part.is_multipart():
            if not ctype.startswith("message/"):
                stack[:0] = [p for p in part.get_payload() if isinstance(p, Message)]
            continue
        if ctype in found and not found[ctype] and part.get_content_disposition() != "attachment":
            found[ctype] = _decode_payload(part)
    return found["text/plain"], found["text/html"]


def _addresses(values: list[str]) -> list[tuple[str, str]]:
    """(decoded display name, lowercased address) pairs from address header values."""
    pairs = getaddresses(values)
    return [(_one_line(_decode_words(name)), addr.strip().lower()) for name, addr in pairs if "@" in addr]


def _msgid(value: str) -> str | None:
    """The first '<id>' in a header value; a bare 'id@host' token is bracketed; else None."""
    match = _MSGID_RE.search(value)
    if match:
        return match.group(0)
    return f"<{value}>" if "@" in value and not _SPACES_RE.search(value) else None


def _received_at(msg: Message) -> datetime:
    """The Date header as an aware datetime, or now (UTC) when missing or unparseable."""
    value = _header(msg, "Date")
    if value:
        try:
            parsed = parsedate_to_datetime(str(value))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except (TypeError, ValueError, IndexError, OverflowError):
            log.debug("unparseable Date header %r", value)
    return datetime.now(UTC)


def parse_message(raw: bytes, *, provider_message_id: str, provider_thread_id: str | None,
                  received_at: datetime | None = None) -> InboundMessage:
    """Parse raw RFC 5322 bytes into an InboundMessage; never raises on malformed mail."""
    try:
        parsed = _parse(raw, provider_message_id, provider_thread_id, received_at)
        return InboundMessage(**{f.name: _inert(getattr(parsed, f.name)) for f in fields(InboundMessage)})
    except Exception:  # one unreadable message must not stop the inbox sync; keep an empty record of it
        log.exception("could not parse message %s", provider_message_id)
        return InboundMessage(
            provider_message_id=provider_message_id, provider_thread_id=provider_thread_id, message_id=None,
            in_reply_to=None, references=(), from_addr="", from_name="", to_addrs=(), subject="", text="",
            full_text="", received_at=received_at or datetime.now(UTC))


def _inert(value: Any) -> Any:
    """A parsed value under the one text rule: NUL and other control characters removed (PostgreSQL stores no NUL)."""
    if isinstance(value, str):
        return without_controls(value)
    if isinstance(value, tuple):
        return tuple(_inert(v) for v in value)
    if isinstance(value, dict):
        return {_inert(k): _inert(v) for k, v in value.items()}
    return value


def _parse(raw: bytes, provider_message_id: str, provider_thread_id: str | None,
           received_at: datetime | None) -> InboundMessage:
    """parse_message without the safety net."""
    msg = email.message_from_bytes(raw if isinstance(raw, bytes) else b"", policy=policy.compat32)
    senders = _addresses(_raw_all(msg, "From"))
    from_name, from_addr = senders[0] if senders else ("", "")
    subject = _header(msg, "Subject")
    headers = {name: _header(msg, name)[:500] for name in _KEPT_HEADERS if _raw_all(msg, name)}
    headers["Content-Type"] = _header(msg, "Content-Type") or "text/plain"
    try:
        plain, markup = _text_parts(msg)
        full_text = tidy(plain) if plain.strip() else html_to_text(markup) if markup else ""
        text = extract_new_text(plain if plain.strip() else html_to_text(markup, drop_quotes=True) if markup else "")
    except Exception:  # keep the headers of a message whose body we cannot read
        log.warning("could not read the body of message %s", provider_message_id, exc_info=True)
        full_text = text = ""
    bounce = detect_bounce(headers, headers["Content-Type"], from_addr, subject)
    statuses = dsn_recipients(msg) if bounce else []
    if statuses and all(action in ("delayed", "delivered", "relayed", "expanded") for _, action in statuses):
        log.info("delivery report without failures (%s) is not a bounce", {a for _, a in statuses})
        bounce = None
    return InboundMessage(
        provider_message_id=provider_message_id,
        provider_thread_id=provider_thread_id,
        message_id=_msgid(_header(msg, "Message-ID")),
        in_reply_to=_msgid(_header(msg, "In-Reply-To")),
        references=tuple(_MSGID_RE.findall(_header(msg, "References"))),
        from_addr=from_addr,
        from_name=from_name,
        to_addrs=tuple(dict.fromkeys(addr for _, addr in _addresses(_raw_all(msg, "To") + _raw_all(msg, "Cc")))),
        subject=subject,
        text=text,
        full_text=full_text,
        received_at=received_at or _received_at(msg),
        headers=headers,
        auto_reply=detect_auto_reply(headers, subject, from_addr),
        bounce=bounce,
    )
