"""One-click unsubscribe (RFC 8058): signed links in every email, and what following one does."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from email.policy import Policy
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection

from agent.errors import AppError
from agent.keyring import KeyRing
from agent.suppressions import service as suppressions
from agent.threads import company
from agent.threads.models import ThreadRow

REASON = "unsubscribed (one-click)"
PATH = "/u/"
_VERSION = 1


class BadToken(AppError):
    """The unsubscribe link was not made by this installation, or was changed."""

    status_code = 400


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """Who asked not to be emailed: the recipient address, whose list, and from which thread."""

    user_id: UUID
    thread_id: UUID
    email: str


class VerbatimHeader(str):
    """A header value the email package writes on one line as given (a long URL must not become encoded words).

    The email policy keeps a value that has a matching `name` as is, and folds it by calling its `fold`.
    """

    name: str

    def __new__(cls, name: str, value: str) -> VerbatimHeader:
        """Check the value can stand unfolded on one line of at most 998 characters."""
        if not value.isascii() or "\r" in value or "\n" in value or len(name) + len(value) + 2 > 998:
            raise ValueError(f"{name} must be one ASCII line of at most 998 characters")
        obj = super().__new__(cls, value)
        obj.name = name
        return obj

    def fold(self, *, policy: Policy) -> str:
        """The header line, unfolded."""
        return f"{self.name}: {self}{policy.linesep}"


def make_token(keyring: KeyRing, *, user_id: UUID, thread_id: UUID, email: str) -> str:
    """A token naming the user, thread and recipient; encrypted and authenticated with the current key."""
    payload = json.dumps({"v": _VERSION, "u": str(user_id), "t": str(thread_id), "e": email.strip().lower()},
                         separators=(",", ":"))
    return keyring.encrypt(payload).rstrip("=")


def read_token(keyring: KeyRing, token: str) -> Unsubscribe:
    """What a token names; BadToken when no key of the ring made it or it was altered."""
    if not token or len(token) > 1000 or not token.isascii():
        raise BadToken(_BAD)
    padded = token + "=" * (-len(token) % 4)
    try:
        base64.urlsafe_b64decode(padded.encode())
        data = json.loads(keyring.decrypt(padded))
        if data.get("v") != _VERSION:
            raise ValueError("unknown token version")
        return Unsubscribe(user_id=UUID(data["u"]), thread_id=UUID(data["t"]), email=str(data["e"]))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BadToken(_BAD) from exc


_BAD = ("This unsubscribe link is not valid: it was changed or did not come from this sender. "
        "Use the link from the email exactly as it is, or reply to the email asking to be removed.")


def url_for(base_url: str, keyring: KeyRing, thread: ThreadRow) -> str:
    """The one-click unsubscribe URL for a thread's recipient."""
    token = make_token(keyring, user_id=thread.user_id, thread_id=thread.id, email=thread.recipient_email)
    return f"{base_url.rstrip('/')}{PATH}{token}"


def headers_for(url: str) -> tuple[tuple[str, str], ...]:
    """RFC 2369 / RFC 8058 headers: the https link only (no mailto: nothing would read mail sent to it)."""
    return (("List-Unsubscribe", VerbatimHeader("List-Unsubscribe", f"<{url}>")),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))


async def describe(conn: AsyncConnection, *, request: Unsubscribe) -> dict[str, Any]:
    """What the confirmation page shows: the address, who sends, and whether it is already unsubscribed."""
    cur = await conn.execute("SELECT email, name FROM users WHERE id = %s", (request.user_id,))
    user = await cur.fetchone()
    reason = await suppressions.reason_for(conn, user_id=request.user_id, email=request.email) if user else None
    return {"email": request.email, "sender": (user["name"] or user["email"]) if user else "",
            "sender_email": user["email"] if user else "", "done": user is None or reason is not None}


async def apply(conn: AsyncConnection, *, request: Unsubscribe) -> dict[str, Any]:
    """Suppress the address for good and close the user's open threads to it (idempotent)."""
    cur = await conn.execute("SELECT id FROM users WHERE id = %s", (request.user_id,))
    if await cur.fetchone() is None:
        return {"suppressed": False, "closed": []}  # the account and all its data are gone: nothing can be sent
    cur = await conn.execute("SELECT id FROM threads WHERE id = %s AND user_id = %s",
                             (request.thread_id, request.user_id))
    source = request.thread_id if await cur.fetchone() else None
    closed = await suppressions.suppress(
        conn, user_id=request.user_id, email=request.email, reason=REASON, source_thread_id=source,
        close_reason="unsubscribed", actor="recipient",
        summary="{email} unsubscribed with the one-click link.",
    )
    for thread_id in dict.fromkeys([*closed, *([source] if source else [])]):  # an opt-out after the thread closed
        await company.stop_company(conn, user_id=request.user_id, thread_id=thread_id, reason="unsubscribed")
    return {"suppressed": True, "closed": closed}
