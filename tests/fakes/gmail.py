"""A stateful fake of the Gmail REST API v1, routed by the static discovery document googleapiclient ships."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from functools import cached_property
from importlib import resources
from typing import Any
from urllib.parse import unquote

from . import _gmail_mime as mime
from ._server import FakeServer, Request, Response, google_error, json_response

GMAIL = "https://www.googleapis.com/auth/gmail."
FULL_ACCESS = "https://mail.google.com/"
NOT_FOUND = "Requested entity was not found."
IMPLEMENTED = {
    "gmail.users.getProfile", "gmail.users.watch", "gmail.users.stop", "gmail.users.history.list",
    "gmail.users.messages.send", "gmail.users.messages.get", "gmail.users.messages.list",
    "gmail.users.messages.modify", "gmail.users.messages.attachments.get",
}


@dataclass
class FakeMessage:
    """One stored message in a fake mailbox."""

    id: str
    thread_id: str
    label_ids: list[str]
    raw: bytes
    internal_date: int
    history_id: int

    @cached_property
    def parsed(self) -> EmailMessage:
        """The message parsed with the stdlib email parser."""
        return mime.parse(self.raw)


@dataclass
class _Mailbox:
    email: str
    history_id: int
    messages: dict[str, FakeMessage] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    expired_before: int = 0
    watch: dict[str, Any] | None = None
    visible_until: int | None = None


def _routes() -> list[tuple[str, re.Pattern[str], str, set[str]]]:
    """(httpMethod, path regex, method id, scopes) for every Gmail v1 method, literal paths first."""
    doc = json.loads(resources.files("googleapiclient").joinpath("discovery_cache/documents/gmail.v1.json").read_text())
    found: list[tuple[str, re.Pattern[str], str, set[str]]] = []

    def walk(node: dict[str, Any]) -> None:
        for meth in node.get("methods", {}).values():
            pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape("/" + meth["path"]))
            found.append((meth["httpMethod"], re.compile(pattern + "$"), meth["id"], set(meth.get("scopes", []))))
        for child in node.get("resources", {}).values():
            walk(child)

    walk(doc)
    return sorted(found, key=lambda r: r[1].pattern.count("(?P<"))


class FakeGmail(FakeServer):
    """Gmail API v1 at {base_url}/gmail/v1/users/{userId}/...; build clients with api_endpoint=base_url."""

    def __init__(self, token_validator: Callable[[str], str | None], *,
                 scope_lookup: Callable[[str], set[str] | None] | None = None) -> None:
        super().__init__()
        self.token_validator = token_validator
        self.scope_lookup = scope_lookup
        self._routes: list[tuple[str, re.Pattern[str], str, set[str]]] = []
        self._boxes: dict[str, _Mailbox] = {}
        self._next_id = 0x18C2F00000000000
        self._attachments: dict[str, bytes] = {}
        self.watch_calls: list[dict[str, Any]] = []

    # ---- test controls ----------------------------------------------------------------------
    def deliver(self, to_email: str, raw: bytes, thread_id: str | None = None,
                labels: Iterable[str] = ("INBOX", "UNREAD")) -> str:
        """Put an incoming message into to_email's mailbox (threaded by In-Reply-To/References); returns its id."""
        with self._lock:
            box = self._box(to_email)
            parsed = mime.parse(raw)
            if thread_id is None:
                thread_id = self._thread_by_refs(box, parsed)
            return self._store(box, raw, thread_id, list(labels)).id

    def sent(self, email: str) -> list[EmailMessage]:
        """Parsed messages with the SENT label in email's mailbox, oldest first."""
        return [m.parsed for m in self.messages(email, "SENT")]

    def messages(self, email: str, label: str | None = None) -> list[FakeMessage]:
        """Stored messages of email's mailbox (optionally only those with label), oldest first."""
        with self._lock:
            return [m for m in self._box(email).messages.values() if label is None or label in m.label_ids]

    def delete(self, email: str, msg_id: str) -> None:
        """Delete a message for good (its history records stay, so a sync may list it and then get a 404)."""
        with self._lock:
            del self._box(email).messages[msg_id]

    def history_id(self, email: str) -> int:
        """The mailbox's current historyId."""
        with self._lock:
            return self._box(email).history_id

    def expire_history_before(self, history_id: int, email: str | None = None) -> None:
        """Make startHistoryId values below history_id answer 404 (for email, or every mailbox)."""
        with self._lock:
            for box in self._boxes.values():
                if email is None or box.email == email.lower():
                    box.expired_before = history_id

    def lag_history(self, email: str, visible_until: int | None) -> None:
        """Make history.list see only records up to visible_until (None: all), as Gmail lagging its own push."""
        with self._lock:
            self._box(email).visible_until = visible_until

    def watch_state(self, email: str) -> dict[str, Any] | None:
        """The active users.watch registration of email (topicName, labelIds, ...), or None after stop."""
        with self._lock:
            return self._box(email).watch

    # ---- state ------------------------------------------------------------------------------
    def _on_start(self) -> None:
        if not self._routes:
            self._routes = _routes()

    def _box(self, email: str) -> _Mailbox:
        email = email.lower()
        if email not in self._boxes:
            self._boxes[email] = _Mailbox(email, history_id=1000 + 100000 * len(self._boxes))
        return self._boxes[email]

    def _thread_by_refs(self, box: _Mailbox, parsed: EmailMessage) -> str | None:
        refs = set(mime.referenced_ids(parsed))
        for m in reversed(list(box.messages.values())):
            if mime.normalize_msgid(str(m.parsed.get("Message-ID", ""))) in refs:
                return m.thread_id
        return None

    def _store(self, box: _Mailbox, raw: bytes, thread_id: str | None, labels: list[str]) -> FakeMessage:
        self._next_id += 1
        msg_id = f"{self._next_id:016x}"
        box.history_id += 1
        last = max((m.internal_date for m in box.messages.values()), default=0)
        msg = FakeMessage(msg_id, thread_id or msg_id, labels, raw, max(int(time.time() * 1000), last + 1), box.history_id)
        box.messages[msg_id] = msg
        box.history.append({"id": box.history_id, "type": "messageAdded", "msg": msg, "labels": list(labels)})
        return msg

    # ---- dispatch ---------------------------------------------------------------------------
    def _handle(self, req: Request) -> Response:
        for http_method, pattern, method_id, scopes in self._routes:  # noqa: B007 - the matched route is used after the loop
            match = pattern.match(req.path)
            if match and http_method == req.method:
                break
        else:
            return google_error(404, f"No such Gmail endpoint: {req.method} {req.path}")
        if method_id not in IMPLEMENTED:
            return google_error(501, f"FakeGmail does not implement {method_id}")
        token = req.bearer()
        email = self.token_validator(token) if token else None
        if not email:
            return google_error(401, "Request had invalid authentication credentials. Expected OAuth 2 access token, "
                                     "login cookie or other valid authentication credential.")
        if self.scope_lookup is not None:
            granted = self.scope_lookup(token or "") or set()
            if not granted & scopes:
                return google_error(403, "Request had insufficient authentication scopes.", "insufficientPermissions")
            if granted & scopes == {GMAIL + "metadata"} and (req.arg("q") or req.arg("format") in ("full", "raw")):
                return google_error(403, "Metadata scope does not support 'q' parameter or full/raw format")
        params = {k: unquote(v) for k, v in match.groupdict().items()}
        user_id = params.pop("userId")
        if user_id != "me" and user_id.lower() != email.lower():
            return google_error(403, f"Delegation denied for {email}", "forbidden")
        handler = getattr(self, "_" + method_id.removeprefix("gmail.users.").replace(".", "_"))
        with self._lock:
            return handler(req, self._box(email), **params)

    # ---- users ------------------------------------------------------------------------------
    def _getProfile(self, req: Request, box: _Mailbox) -> Response:
        threads = {m.thread_id for m in box.messages.values()}
        return json_response(200, {"emailAddress": box.email, "messagesTotal": len(box.messages),
                                   "threadsTotal": len(threads), "historyId": str(box.history_id)})

    def _watch(self, req: Request, box: _Mailbox) -> Response:
        body = req.json()
        topic = body.get("topicName", "")
        if not re.fullmatch(r"projects/[^/]+/topics/[^/]+", topic):
            return google_error(400, "Invalid topicName does not match projects/*/topics/*", "invalidArgument")
        expiration = int(time.time() * 1000) + 7 * 24 * 3600 * 1000
        box.watch = {**body, "historyId": box.history_id, "expiration": expiration}
        self.watch_calls.append({"email": box.email, **body})
        return json_response(200, {"historyId": str(box.history_id), "expiration": str(expiration)})

    def _stop(self, req: Request, box: _Mailbox) -> Response:
        box.watch = None
        return Response(204)

    # ---- history ----------------------------------------------------------------------------
    def _history_list(self, req: Request, box: _Mailbox) -> Response:
        start_text = req.arg("startHistoryId")
        if not start_text or not start_text.isdigit():
            return google_error(400, "Invalid startHistoryId" if start_text else "Missing startHistoryId", "invalidArgument")
        start = int(start_text)
        if start < box.expired_before:
            return google_error(404, NOT_FOUND)
        types = set(req.query.get("historyTypes", []))
        label = req.arg("labelId")
        visible = box.history_id if box.visible_until is None else min(box.history_id, box.visible_until)
        records = [r for r in box.history if start < r["id"] <= visible and (not types or r["type"] in types)
                   and (label is None or label in r["labels"])]
        page, token = self._page(req, records)
        if isinstance(page, Response):
            return page
        out: dict[str, Any] = {"historyId": str(visible)}
        if page:
            out["history"] = [self._history_record(r) for r in page]
        if token:
            out["nextPageToken"] = token
        return json_response(200, out)

    @staticmethod
    def _history_record(rec: dict[str, Any]) -> dict[str, Any]:
        msg: FakeMessage = rec["msg"]
        ref = {"id": msg.id, "threadId": msg.thread_id}
        out: dict[str, Any] = {"id": str(rec["id"]), "messages": [ref]}
        if rec["type"] == "messageAdded":
            out["messagesAdded"] = [{"message": {**ref, "labelIds": rec["labels"]}}]
        else:
            key = "labelsAdded" if rec["type"] == "labelAdded" else "labelsRemoved"
            out[key] = [{"message": {**ref, "labelIds": list(msg.label_ids)}, "labelIds": rec["changed"]}]
        return out

    def _page(self, req: Request, items: list[Any]) -> tuple[list[Any] | Response, str | None]:
        size = min(int(req.arg("maxResults") or 100), 500)
        token = req.arg("pageToken") or "p0"
        if not re.fullmatch(r"p\d+", token):
            return google_error(400, "Invalid pageToken", "invalidArgument"), None
        offset = int(token[1:])
        more = offset + size < len(items)
        return items[offset:offset + size], (f"p{offset + size}" if more else None)

    # ---- messages ---------------------------------------------------------------------------
    def _messages_send(self, req: Request, box: _Mailbox) -> Response:
        body = req.json()
        try:
            raw = mime.b64url_decode(body.get("raw", ""))
        except ValueError as exc:
            return google_error(400, str(exc), "invalidArgument")
        parsed = mime.parse(raw)
        if not any(parsed.get(h) for h in ("To", "Cc", "Bcc")):
            return google_error(400, "Recipient address required", "invalidArgument")
        raw = self._stamp(raw, parsed, box.email)
        thread_id = body.get("threadId")
        if thread_id:
            thread = [m for m in box.messages.values() if m.thread_id == thread_id]
            if not thread:
                return google_error(404, NOT_FOUND)
            if not self._joins_thread(parsed, thread):
                thread_id = None
        msg = self._store(box, raw, thread_id, ["SENT"])
        return json_response(200, {"id": msg.id, "threadId": msg.thread_id, "labelIds": msg.label_ids})

    def _stamp(self, raw: bytes, parsed: EmailMessage, account: str) -> bytes:
        """Like Gmail: force From to the account address and add Message-ID/Date when missing."""
        changed = False
        name, addr = parseaddr(str(parsed.get("From", "")))
        if addr.lower() != account:
            del parsed["From"]
            parsed["From"] = formataddr((name, account)) if name else account
            changed = True
        if not parsed.get("Message-ID"):
            parsed["Message-ID"] = f"<CAfake{self._next_id + 1:x}@mail.gmail.com>"
            changed = True
        if not parsed.get("Date"):
            parsed["Date"] = format_datetime(datetime.now(UTC))
            changed = True
        return parsed.as_bytes() if changed else raw

    @staticmethod
    def _joins_thread(parsed: EmailMessage, thread: list[FakeMessage]) -> bool:
        """Gmail keeps a given threadId only if References/In-Reply-To name a thread message and subjects match."""
        ids = {mime.normalize_msgid(str(m.parsed.get("Message-ID", ""))) for m in thread}
        subject = mime.normalize_subject(str(parsed.get("Subject", "")))
        same_subject = any(mime.normalize_subject(str(m.parsed.get("Subject", ""))) == subject for m in thread)
        return bool(ids & set(mime.referenced_ids(parsed))) and same_subject

    def _find(self, box: _Mailbox, msg_id: str) -> FakeMessage | Response:
        if not re.fullmatch(r"[0-9a-fA-F]{1,16}", msg_id):
            return google_error(400, "Invalid id value", "invalidArgument")
        return box.messages.get(msg_id) or google_error(404, NOT_FOUND)

    def _resource(self, msg: FakeMessage, fmt: str, wanted_headers: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {"id": msg.id, "threadId": msg.thread_id, "labelIds": list(msg.label_ids),
                               "snippet": mime.snippet(msg.parsed), "sizeEstimate": len(msg.raw),
                               "historyId": str(msg.history_id), "internalDate": str(msg.internal_date)}
        if fmt == "raw":
            out["raw"] = mime.b64url(msg.raw)
        elif fmt == "metadata":
            wanted = {h.lower() for h in wanted_headers}
            headers = [h for h in mime.headers_of(msg.parsed) if not wanted or h["name"].lower() in wanted]
            out["payload"] = {"mimeType": msg.parsed.get_content_type(), "headers": headers}
        elif fmt == "full":
            out["payload"] = mime.payload(msg.parsed, "", self._attachments, msg.id)
        return out

    def _messages_get(self, req: Request, box: _Mailbox, id: str) -> Response:  # noqa: A002
        fmt = (req.arg("format") or "full").lower()
        if fmt not in ("full", "metadata", "minimal", "raw"):
            return google_error(400, f"Invalid format: {fmt}", "invalidArgument")
        msg = self._find(box, id)
        if isinstance(msg, Response):
            return msg
        return json_response(200, self._resource(msg, fmt, req.query.get("metadataHeaders", [])))

    def _messages_list(self, req: Request, box: _Mailbox) -> Response:
        label_ids = req.query.get("labelIds", [])
        q = req.arg("q") or ""
        spam_trash = (req.arg("includeSpamTrash") or "false").lower() == "true"
        found = [
            m for m in sorted(box.messages.values(), key=lambda m: m.internal_date, reverse=True)
            if all(lb in m.label_ids for lb in label_ids)
            and (spam_trash or not {"SPAM", "TRASH"} & set(m.label_ids) or label_ids or "in:" in q)
            and (not q or mime.matches_query(q, m.parsed, m.label_ids, m.internal_date))
        ]
        page, token = self._page(req, found)
        if isinstance(page, Response):
            return page
        out: dict[str, Any] = {"resultSizeEstimate": len(found)}
        if page:
            out["messages"] = [{"id": m.id, "threadId": m.thread_id} for m in page]
        if token:
            out["nextPageToken"] = token
        return json_response(200, out)

    def _messages_modify(self, req: Request, box: _Mailbox, id: str) -> Response:  # noqa: A002
        msg = self._find(box, id)
        if isinstance(msg, Response):
            return msg
        body = req.json()
        for kind, ids in (("labelAdded", body.get("addLabelIds") or []), ("labelRemoved", body.get("removeLabelIds") or [])):
            changed = [lb for lb in ids if (lb in msg.label_ids) == (kind == "labelRemoved")]
            if not changed:
                continue
            msg.label_ids = [lb for lb in msg.label_ids if lb not in changed] if kind == "labelRemoved" \
                else msg.label_ids + changed
            box.history_id += 1
            msg.history_id = box.history_id
            box.history.append({"id": box.history_id, "type": kind, "msg": msg, "labels": list(msg.label_ids),
                                "changed": changed})
        return json_response(200, {"id": msg.id, "threadId": msg.thread_id, "labelIds": msg.label_ids})

    def _messages_attachments_get(self, req: Request, box: _Mailbox, messageId: str, id: str) -> Response:  # noqa: A002,N803
        data = self._attachments.get(id)
        if data is None or messageId not in box.messages:
            return google_error(404, NOT_FOUND)
        return json_response(200, {"attachmentId": id, "size": len(data), "data": mime.b64url(data)})
