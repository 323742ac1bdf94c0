"""The Gmail transport: google-api-python-client calls off the event loop, retried with backoff and jitter."""

from __future__ import annotations

import asyncio
import base64
import logging
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from agent import metrics
from agent.google.mailboxes import disconnected_reason
from agent.mail.mime import build_message, parse_message
from agent.mail.models import InboundMessage, OutgoingMessage, SentMessage
from agent.mail.transport import MailboxDisconnected, TransportError

if TYPE_CHECKING:
    from google.oauth2.credentials import Credentials
    from googleapiclient.errors import HttpError

# The Google client libraries (googleapiclient, google.auth, httplib2) load on the first Gmail call, not at import:
# the server is ready without them, and local mode never needs them.
log = logging.getLogger(__name__)

NAME = "gmail"
_clients = threading.local()  # see _service
HTTP_TIMEOUT = 30
RATE_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "backendError"}


class GmailNotFound(TransportError):
    """Gmail answered 404 (e.g. an expired history cursor)."""


class GmailUnavailable(TransportError):
    """Gmail kept failing transiently (429, 5xx, network, token refresh) after every retry: try again later."""


def _reason(exc: HttpError) -> str:
    details = getattr(exc, "error_details", None)
    if isinstance(details, list) and details and isinstance(details[0], dict):
        return str(details[0].get("reason", ""))
    return ""


def is_transient(exc: BaseException) -> bool:
    """429, 5xx, Gmail's rate-limit 403s and network failures are worth retrying."""
    import httplib2
    from google.auth.exceptions import RefreshError
    from google.auth.exceptions import TransportError as AuthTransportError
    from googleapiclient.errors import HttpError

    if isinstance(exc, HttpError):
        status = exc.status_code
        return status == 429 or status >= 500 or (status == 403 and _reason(exc) in RATE_REASONS)
    if isinstance(exc, RefreshError):
        return bool(getattr(exc, "retryable", False))
    return isinstance(exc, (OSError, httplib2.HttpLib2Error, AuthTransportError))


class GmailTransport:
    """One user's Gmail: send in a thread, reconcile by Message-ID, read messages, history and watch."""

    name = NAME

    def __init__(
        self, *, credentials: Credentials | None, api_url: str, address: str, retry_base: float, max_attempts: int,
        on_revoked: Callable[[str], Awaitable[None]], unavailable: str | None = None,
    ) -> None:
        self._creds = credentials
        self._api_url = api_url
        self.address = address
        self._retry_base = retry_base
        self._max_attempts = max_attempts
        self._on_revoked = on_revoked
        self._disconnected = unavailable
        self._fetched: dict[str, InboundMessage] = {}

    # ---- calls --------------------------------------------------------------------------------
    def _execute(self, make: Callable[[Any], Any]) -> Any:
        """Blocking: build the request and run it on this OS thread's HTTP connections (httplib2 is not thread-safe)."""
        import google_auth_httplib2

        users, http = _client(self._api_url)
        return make(users).execute(http=google_auth_httplib2.AuthorizedHttp(self._creds, http=http))

    async def call(self, make: Callable[[Any], Any], *, what: str,
                   before_retry: Callable[[], Awaitable[Any]] | None = None) -> Any:
        """Run one Gmail API request in a thread, retrying transient failures with backoff; before_retry may end it."""
        if self._disconnected or self._creds is None:
            raise MailboxDisconnected(self._disconnected or disconnected_reason("Gmail is not connected"))
        import httplib2
        from google.auth.exceptions import RefreshError
        from google.auth.exceptions import TransportError as AuthTransportError
        from googleapiclient.errors import HttpError
        from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._max_attempts), reraise=True, retry=retry_if_exception(is_transient),
            wait=wait_exponential_jitter(initial=self._retry_base, max=self._retry_base * 32, jitter=self._retry_base),
            before_sleep=lambda state: log.warning("Gmail %s failed (%s); retry %d after backoff", what,
                                                   _describe(state.outcome.exception()), state.attempt_number),
        )
        try:
            async for attempt in retrying:
                with attempt:
                    if before_retry is not None and attempt.retry_state.attempt_number > 1:
                        done = await before_retry()
                        if done is not None:
                            return done
                    try:
                        return await asyncio.to_thread(self._execute, make)
                    except Exception as exc:
                        metrics.gmail_error(exc)
                        raise
        except RefreshError as exc:
            if "invalid_grant" in str(exc) or "unauthorized_client" in str(exc):
                why = "Google no longer accepts the stored permission (revoked or expired)"
                await self._on_revoked(why)
                raise MailboxDisconnected(disconnected_reason(why)) from exc
            raise GmailUnavailable(f"Gmail {what}: could not refresh the access token ({_describe(exc)})") from exc
        except HttpError as exc:
            if exc.status_code == 404:
                raise GmailNotFound(f"Gmail {what}: not found") from exc
            if exc.status_code == 403 and _reason(exc) == "insufficientPermissions":
                why = "Gmail permissions are missing (send and read are both needed)"
                await self._on_revoked(why)
                raise MailboxDisconnected(disconnected_reason(why)) from exc
            error = GmailUnavailable if is_transient(exc) else TransportError
            raise error(f"Gmail {what} failed: {_describe(exc)}") from exc
        except (OSError, httplib2.HttpLib2Error, AuthTransportError) as exc:
            raise GmailUnavailable(f"Gmail {what}: network failure ({_describe(exc)})") from exc
        raise AssertionError("unreachable: tenacity either returns or raises")

    # ---- MailTransport ------------------------------------------------------------------------
    async def send(self, msg: OutgoingMessage) -> SentMessage:
        """Send in the Gmail thread when one is known; a retry first looks the Message-ID up, never re-posts blindly."""
        body: dict[str, Any] = {"raw": base64.urlsafe_b64encode(build_message(msg)).decode()}
        if msg.provider_thread_id:
            body["threadId"] = msg.provider_thread_id

        async def already_sent() -> SentMessage | None:
            """messages.send is not idempotent: a failed attempt (timeout, 5xx) may have been stored anyway."""
            found = await self.find_sent(msg.message_id)
            if found is not None:
                log.info("Gmail send: the failed attempt was delivered (%s found in sent mail); not sending again",
                         found.provider_message_id)
            else:
                log.info("Gmail send: the failed attempt is not in sent mail; sending again")
            return found

        sent = await self.call(lambda u: u.messages().send(userId="me", body=body), what="send",
                               before_retry=already_sent)
        if isinstance(sent, SentMessage):
            return sent
        return SentMessage(provider_message_id=sent["id"], provider_thread_id=sent["threadId"],
                           message_id=msg.message_id)

    async def find_sent(self, message_id: str) -> SentMessage | None:
        """Our sent message with this Message-ID, if it reached Gmail (search rfc822msgid: in sent mail)."""
        query = f"rfc822msgid:{message_id.strip().strip('<>')} in:sent"
        found = await self.call(lambda u: u.messages().list(userId="me", q=query, maxResults=5), what="find sent")
        hits = found.get("messages") or []
        if not hits:
            return None
        return SentMessage(provider_message_id=hits[0]["id"], provider_thread_id=hits[0]["threadId"],
                           message_id=message_id)

    async def fetch(self, provider_message_id: str) -> InboundMessage:
        """Read and parse one message (format=raw); each message is downloaded once per transport."""
        if provider_message_id in self._fetched:
            return self._fetched[provider_message_id]
        got = await self.call(lambda u: u.messages().get(userId="me", id=provider_message_id, format="raw"),
                              what="read message")
        received = datetime.fromtimestamp(int(got.get("internalDate", "0")) / 1000, UTC) if got.get("internalDate") \
            else None
        parsed = parse_message(base64.urlsafe_b64decode(got["raw"] + "=" * (-len(got["raw"]) % 4)),
                               provider_message_id=provider_message_id, provider_thread_id=got.get("threadId"),
                               received_at=received)
        self._fetched[provider_message_id] = parsed
        return parsed

    # ---- sync and watch -----------------------------------------------------------------------
    async def headers(self, provider_message_id: str) -> dict[str, str]:
        """Threading headers and sender of a message, without downloading its body."""
        got = await self.call(lambda u: u.messages().get(
            userId="me", id=provider_message_id, format="metadata",
            metadataHeaders=["From", "Message-ID", "In-Reply-To", "References"]), what="read headers")
        headers = {h["name"].lower(): h["value"] for h in (got.get("payload") or {}).get("headers", [])}
        headers["threadid"] = got.get("threadId", "")
        headers["labels"] = " ".join(got.get("labelIds") or [])
        return headers

    async def history_page(self, start: int, page_token: str | None) -> dict[str, Any]:
        """One page of messageAdded history in INBOX after `start` (GmailNotFound when the cursor expired)."""
        params: dict[str, Any] = {"userId": "me", "startHistoryId": str(start), "historyTypes": ["messageAdded"],
                                  "labelId": "INBOX", "maxResults": 500}
        if page_token:
            params["pageToken"] = page_token
        return await self.call(lambda u: u.history().list(**params), what="history")

    async def inbox_page(self, query: str, page_token: str | None) -> dict[str, Any]:
        """One page of INBOX message ids matching a search (used by the bounded resync)."""
        params: dict[str, Any] = {"userId": "me", "labelIds": ["INBOX"], "q": query, "maxResults": 100}
        if page_token:
            params["pageToken"] = page_token
        return await self.call(lambda u: u.messages().list(**params), what="list inbox")

    async def profile(self) -> dict[str, Any]:
        """The mailbox address and current historyId."""
        return await self.call(lambda u: u.getProfile(userId="me"), what="profile")

    async def watch(self, topic: str) -> dict[str, Any]:
        """Ask Gmail to publish INBOX changes to the Pub/Sub topic."""
        body = {"topicName": topic, "labelIds": ["INBOX"], "labelFilterBehavior": "include"}
        return await self.call(lambda u: u.watch(userId="me", body=body), what="watch")

    async def stop(self) -> None:
        """Stop Gmail's notifications for this mailbox."""
        await self.call(lambda u: u.stop(userId="me"), what="stop watch")


class _Users:
    """A Gmail `users()` resource whose nested resources are built once: each `messages()` call of the library
    builds a new Resource with all its methods (about 1 ms; `history()` 0.2 ms), two or three times a reply."""

    def __init__(self, users: Any) -> None:
        self._users = users
        self._nested: dict[str, Any] = {}

    def _built(self, name: str) -> Any:
        if name not in self._nested:
            self._nested[name] = getattr(self._users, name)()
        return self._nested[name]

    def messages(self) -> Any:
        """users.messages, built once."""
        return self._built("messages")

    def history(self) -> Any:
        """users.history, built once."""
        return self._built("history")

    def __getattr__(self, name: str) -> Any:  # getProfile, watch, stop: the users() resource's own methods
        return getattr(self._users, name)


def _client(api_url: str) -> tuple[Any, Any]:
    """This OS thread's Gmail `users()` resource for `api_url` and its httplib2 connections, built once.

    Building the client parses the discovery document (~1.5 ms), each nested resource costs up to 1 ms more
    (`_Users`), and a new `httplib2.Http` would open a new TLS connection to Google for every request. Neither
    carries credentials: each request is authorised by the caller's `AuthorizedHttp` wrapper (`_execute`). Per
    thread, because neither is thread-safe.
    """
    cache: dict[str, tuple[Any, Any]] | None = getattr(_clients, "by_url", None)
    if cache is None:
        cache = _clients.by_url = {}
    if api_url not in cache:
        import httplib2
        from googleapiclient.discovery import build

        http = httplib2.Http(timeout=HTTP_TIMEOUT)
        service = build("gmail", "v1", http=http, static_discovery=True, cache_discovery=False,
                        client_options={"api_endpoint": api_url})
        cache[api_url] = (_Users(service.users()), http)
    return cache[api_url]


def _describe(exc: BaseException | None) -> str:
    """A short, token-free description of a failure."""
    from googleapiclient.errors import HttpError

    if isinstance(exc, HttpError):
        return f"HTTP {exc.status_code} {exc.reason or ''}".strip()
    return f"{type(exc).__name__}: {str(exc)[:200]}" if exc else "unknown"
