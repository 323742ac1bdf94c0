"""RFC 822 helpers for FakeGmail: base64url, Gmail payload trees, snippets and search-query matching."""

from __future__ import annotations

import base64
import binascii
import html
import re
import shlex
from datetime import UTC, datetime, timezone
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses
from typing import Any


def b64url(data: bytes) -> str:
    """URL-safe base64 with padding, as Gmail returns it."""
    return base64.urlsafe_b64encode(data).decode()


def b64url_decode(text: str) -> bytes:
    """Decode base64 (URL-safe or standard, padded or not), as Google's ByteString fields accept."""
    cleaned = text.strip().replace("+", "-").replace("/", "_")
    if not re.fullmatch(r"[A-Za-z0-9_\-]*=*", cleaned):
        raise ValueError("Invalid value for ByteString")
    try:
        return base64.urlsafe_b64decode(cleaned.rstrip("=") + "=" * (-len(cleaned.rstrip("=")) % 4))
    except binascii.Error as exc:
        raise ValueError("Invalid value for ByteString") from exc


def parse(raw: bytes) -> EmailMessage:
    """Parse RFC 822 bytes with the modern email policy."""
    return BytesParser(policy=policy.default).parsebytes(raw)  # type: ignore[return-value]


def normalize_msgid(value: str) -> str:
    """A Message-ID without angle brackets or whitespace."""
    return value.strip().strip("<>").strip()


def referenced_ids(msg: Message) -> list[str]:
    """Message-IDs named by In-Reply-To and References."""
    text = " ".join(str(msg.get(h, "")) for h in ("In-Reply-To", "References"))
    return [normalize_msgid(m) for m in re.findall(r"<[^<>\s]+>", text)]


def normalize_subject(subject: str) -> str:
    """Subject without Re:/Fwd: prefixes, lowercased, for thread matching."""
    return re.sub(r"^(\s*(re|fwd?|aw|sv)\s*:\s*)+", "", subject, flags=re.I).strip().lower()


def headers_of(msg: Message) -> list[dict[str, str]]:
    """Gmail-style header list (decoded values, original order)."""
    return [{"name": name, "value": str(value)} for name, value in msg.items()]


def payload(msg: Message, part_id: str, attachments: dict[str, bytes], msg_id: str) -> dict[str, Any]:
    """The Gmail `payload` MessagePart tree (bodies decoded then base64url'd; attachments by attachmentId)."""
    part: dict[str, Any] = {"partId": part_id, "mimeType": msg.get_content_type(),
                            "filename": msg.get_filename() or "", "headers": headers_of(msg)}
    if msg.is_multipart():
        part["body"] = {"size": 0}
        children = msg.get_payload()
        prefix = f"{part_id}." if part_id else ""
        part["parts"] = [payload(child, f"{prefix}{i}", attachments, msg_id) for i, child in enumerate(children)]
        return part
    data = msg.get_payload(decode=True) or b""
    if part["filename"]:
        attachment_id = f"ANGjdJ-{msg_id}-{part_id or 'root'}"
        attachments[attachment_id] = data
        part["body"] = {"attachmentId": attachment_id, "size": len(data)}
    else:
        part["body"] = {"size": len(data), "data": b64url(data)} if data else {"size": 0}
    return part


def text_of(msg: EmailMessage) -> str:
    """The plain text body (or tag-stripped HTML) of a message."""
    body = msg.get_body(preferencelist=("plain", "html"))
    if body is None:
        return ""
    content = body.get_content()
    if body.get_content_type() == "text/html":
        content = html.unescape(re.sub(r"<[^>]+>", " ", content))
    return content


def snippet(msg: EmailMessage) -> str:
    """Gmail-like snippet: first ~200 chars of the text, whitespace collapsed, HTML-escaped."""
    text = " ".join(text_of(msg).split())
    return html.escape(text[:200]).replace("&#x27;", "&#39;")


def _addr_match(msg: Message, headers: tuple[str, ...], needle: str) -> bool:
    values = [str(msg.get(h, "")) for h in headers]
    pairs = getaddresses(values)
    return any(needle in f"{name} {addr}".lower() for name, addr in pairs)


def _date_arg(value: str) -> float:
    if value.isdigit():
        return float(value)
    return datetime.strptime(value.replace("-", "/"), "%Y/%m/%d").replace(tzinfo=UTC).timestamp()


def matches_query(q: str, msg: EmailMessage, labels: list[str], internal_date_ms: int) -> bool:
    """Whether a message matches a Gmail search query (rfc822msgid:, in:, is:, label:, from:, to:, subject:,
    after:, before:, -negation, free text)."""
    for token in shlex.split(q):
        negate = token.startswith("-") and len(token) > 1
        token = token[1:] if negate else token
        key, sep, value = token.partition(":")
        key, value = key.lower(), value.lower()
        if not sep:
            key, value = "", token.lower()
        if key == "rfc822msgid":
            ok = normalize_msgid(str(msg.get("Message-ID", ""))).lower() == normalize_msgid(value)
        elif key == "in":
            ok = value == "anywhere" or value.upper() in labels
        elif key == "label":
            ok = value.upper() in [lb.upper() for lb in labels]
        elif key == "is":
            ok = {"unread": "UNREAD" in labels, "read": "UNREAD" not in labels,
                  "starred": "STARRED" in labels, "important": "IMPORTANT" in labels}.get(value, False)
        elif key == "from":
            ok = _addr_match(msg, ("From",), value)
        elif key in ("to", "cc", "bcc"):
            ok = _addr_match(msg, ("To", "Cc", "Bcc") if key == "to" else (key.capitalize(),), value)
        elif key == "subject":
            ok = value in str(msg.get("Subject", "")).lower()
        elif key in ("after", "before"):
            when = internal_date_ms / 1000
            ok = when > _date_arg(value) if key == "after" else when < _date_arg(value)
        else:
            haystack = " ".join([str(msg.get("Subject", "")), str(msg.get("From", "")), str(msg.get("To", "")),
                                 text_of(msg)]).lower()
            ok = (value if key == "" else token.lower()) in haystack
        if ok == negate:
            return False
    return True

