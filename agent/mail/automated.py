"""Detection of automated mail: auto-replies (out-of-office, lists, no-reply) and bounces."""

from __future__ import annotations

import email
import logging
import re
from collections.abc import Mapping
from email import policy
from email.message import Message

log = logging.getLogger(__name__)

_AUTO_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply", "auto-reply"})

# Phrases that only appear in automatic answers: matched anywhere in the subject.
_OOO_ANYWHERE_RE = re.compile(
    r"automatic reply|auto[- ]?repl(?:y|ied)|auto[- ]?respon(?:se|der)|out of (?:the )?office:"
    r"|абонент отсутствует|автоответ|автоматический ответ"
    r"|abwesenheitsnotiz|automatische antwort"
    r"|r[ée]ponse automatique|message d'absence"
    r"|respuesta autom[áa]tica|risposta automatica|resposta autom[áa]tica",
    re.IGNORECASE,
)
# Phrases that are ambiguous mid-subject ("Re: out of office hours support") but not as a prefix.
_OOO_PREFIX_RE = re.compile(
    r"^[\s\[(]*(?:auto\s*:|out of (?:the )?office\b|ooo\b|away from (?:the |my )?office\b"
    r"|vacation (?:reply|notice|message)\b|нет на месте\b|вне офиса\b|в отпуске\b"
    r"|abwesend\b|abwesenheit\b|absence\b|absent(?:e)? du bureau\b"
    r"|fuera de (?:la )?oficina\b|fuori ufficio\b)",
    re.IGNORECASE,
)
_NO_REPLY_RE = re.compile(r"^(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|dont[-_.]?reply)", re.IGNORECASE)
_BOUNCE_SENDER_RE = re.compile(r"^(mailer-daemon|postmaster)(?:[+@]|$)", re.IGNORECASE)
_BOUNCE_SUBJECT_RE = re.compile(
    r"delivery status notification \(failure\)|^[\s\[(]*undeliverable\b|undelivered mail"
    r"|mail delivery (?:failed|failure)|delivery (?:has )?failed|^[\s\[(]*delivery failure"
    r"|^[\s\[(]*failure notice|^[\s\[(]*returned mail\b|message not delivered"
    r"|недоставленное сообщение|не удалось доставить|сообщение не доставлено"
    r"|^[\s\[(]*unzustellbar|^[\s\[(]*non remis|^[\s\[(]*no se puede entregar",
    re.IGNORECASE,
)
_RECIPIENT_RE = re.compile(r"[^\s<>;,\"']+@[^\s<>;,\"']+")


def _lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    """Header dict with lowercased names and stripped values."""
    return {k.lower(): (v or "").strip() for k, v in headers.items()}


def _local_part(addr: str) -> str:
    """The part of an address before the last '@'."""
    return (addr or "").strip().strip("<>").rsplit("@", 1)[0]


def is_out_of_office(subject: str) -> bool:
    """Whether a subject reads like an away message (the model may then read its return date)."""
    return bool(_OOO_ANYWHERE_RE.search(subject or "") or _OOO_PREFIX_RE.search(subject or ""))


def detect_auto_reply(headers: Mapping[str, str], subject: str, from_addr: str) -> str | None:
    """Why this message looks like an automatic reply, or None for a human-looking one."""
    h = _lower_keys(headers)
    auto_submitted = h.get("auto-submitted", "").split(";")[0].strip().lower()
    if auto_submitted and auto_submitted != "no":
        return f"Auto-Submitted: {auto_submitted}"
    if "x-autoreply" in h:
        return "X-Autoreply header"
    if "x-autorespond" in h:
        return "X-Autorespond header"
    precedence = h.get("precedence", "").lower()
    if precedence in _AUTO_PRECEDENCE:
        return f"Precedence: {precedence}"
    if is_out_of_office(subject):
        return "out-of-office subject"
    if h.get("list-id"):
        return "List-Id mailing list"
    if _NO_REPLY_RE.match(_local_part(from_addr)):
        return "no-reply sender"
    return None


def detect_bounce(headers: Mapping[str, str], content_type: str, from_addr: str, subject: str) -> str | None:
    """Why this message looks like a delivery failure report, or None."""
    h = _lower_keys(headers)
    sender = _BOUNCE_SENDER_RE.match(_local_part(from_addr) or "")
    if sender:
        return f"{sender.group(1).lower()} sender"
    ctype = (content_type or h.get("content-type", "")).lower()
    if ctype.startswith("multipart/report") and re.search(r"report-type=\"?delivery-status", ctype):
        return "multipart/report delivery-status"
    if h.get("x-failed-recipients"):
        return "X-Failed-Recipients header"
    if _BOUNCE_SUBJECT_RE.search(subject or ""):
        return "bounce subject"
    return None


def dsn_recipients(msg: Message) -> list[tuple[str, str]]:
    """(recipient, action) pairs from every message/delivery-status part, recipient lowercased."""
    found: list[tuple[str, str]] = []
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        payload = part.get_payload()
        blocks = payload if isinstance(payload, list) else []
        if not blocks and isinstance(payload, str):
            # Unparsed status body: parse it as header blocks separated by blank lines.
            blocks = [email.message_from_string(b) for b in re.split(r"\r?\n\r?\n", payload) if b.strip()]
        for block in blocks:
            field = block.get("Final-Recipient") or block.get("Original-Recipient") or ""
            match = _RECIPIENT_RE.search(str(field).split(";", 1)[-1])
            if match:
                found.append((match.group(0).lower(), str(block.get("Action", "")).strip().lower()))
    return found


def bounced_recipient(raw: bytes) -> str | None:
    """The failed recipient address of a bounce (DSN Final-Recipient or X-Failed-Recipients), or None."""
    try:
        msg = email.message_from_bytes(raw or b"", policy=policy.compat32)
        entries = dsn_recipients(msg)
    except Exception:  # a bounce we cannot read must not break the reply pipeline
        log.warning("could not parse a bounce message", exc_info=True)
        return None
    failed = [addr for addr, action in entries if action in ("failed", "")]
    if failed:
        return failed[0]
    header = msg.get("X-Failed-Recipients")
    if header:
        match = _RECIPIENT_RE.search(str(header))
        if match:
            return match.group(0).lower()
    return None
