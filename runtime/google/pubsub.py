"""Hearing about new mail: Pub/Sub push tokens, the pull subscriber, and the polling fallback."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from agent.config import ConfigError, Settings
from agent.google import mailboxes
from agent.google.oauth import GOOGLE_ISSUERS
from runtime.google.tasks import defer_sync, notify

if TYPE_CHECKING:
    import google.auth.transport.requests

    from runtime.services import Services

# The Google client libraries (google.auth, cachecontrol, requests, google.cloud.pubsub) load on the first push or
# pull, not at import: readiness does not wait for them, and local mode never loads them.

log = logging.getLogger(__name__)
DEFER_TIMEOUT = 30


class PushRejected(Exception):
    """The push request is not from our Pub/Sub subscription; status is 401 or 403."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class MalformedNotification(ValueError):
    """An authenticated message that is not a Gmail notification."""


@dataclass(frozen=True, slots=True)
class Notification:
    """What Gmail publishes: the mailbox and its historyId after the change."""

    email: str
    history_id: int


@cache
def _certs_request() -> google.auth.transport.requests.Request:
    """The transport that fetches Google's signing certificates, cached by their HTTP cache headers (made on first
    push, shared by every later one: the certificates are fetched again only when Google's max-age runs out)."""
    import cachecontrol
    import google.auth.transport.requests
    import requests

    return google.auth.transport.requests.Request(session=cachecontrol.CacheControl(requests.Session()))


def verify_push_token(settings: Settings, authorization: str | None) -> dict[str, Any]:
    """Blocking: check the push request's OIDC token (signature, expiry, issuer, audience, email, email_verified)."""
    from google.auth.exceptions import GoogleAuthError
    from google.oauth2 import id_token

    audience, account = settings.pubsub_push_audience, settings.pubsub_push_service_account
    if not audience or not account:
        raise PushRejected(403, "Push is not configured: set EA_PUBSUB_PUSH_AUDIENCE and "
                                "EA_PUBSUB_PUSH_SERVICE_ACCOUNT.")
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise PushRejected(401, "Missing bearer token.")
    try:
        claims = id_token.verify_token(token.strip(), _certs_request(), audience=audience,
                                       certs_url=settings.google_certs_url, clock_skew_in_seconds=10)
    except (ValueError, GoogleAuthError) as exc:
        raise PushRejected(401, f"Invalid push token: {str(exc)[:120]}") from exc
    if claims.get("iss") not in GOOGLE_ISSUERS:
        raise PushRejected(401, "Invalid push token: wrong issuer.")
    if claims.get("email") != account:
        raise PushRejected(403, "Push token is for another service account.")
    if claims.get("email_verified") is not True:
        raise PushRejected(403, "Push token's email is not verified.")
    return claims


def parse_notification(data: bytes) -> Notification:
    """The Gmail notification in a Pub/Sub message's data (JSON {emailAddress, historyId})."""
    try:
        body = json.loads(data)
        email, history = body["emailAddress"], body["historyId"]
    except (ValueError, TypeError, KeyError) as exc:
        raise MalformedNotification(f"not a Gmail notification: {type(exc).__name__}") from exc
    if not isinstance(email, str) or "@" not in email or not str(history).isdigit():
        raise MalformedNotification("not a Gmail notification: bad emailAddress or historyId")
    return Notification(email=email, history_id=int(history))


def parse_push_body(body: Any) -> Notification:
    """The notification inside a push envelope ({"message": {"data": base64}, "subscription": ...})."""
    try:
        data = base64.b64decode(body["message"]["data"], validate=True)
    except (TypeError, KeyError, binascii.Error) as exc:
        raise MalformedNotification(f"not a Pub/Sub push envelope: {type(exc).__name__}") from exc
    return parse_notification(data)


class PullSubscriber:
    """Streaming pull on EA_PUBSUB_SUBSCRIPTION: each message queues a sync, and is acked only after that."""

    def __init__(self, svc: Services, loop: asyncio.AbstractEventLoop) -> None:
        self._svc = svc
        self._loop = loop
        self._client: Any = None
        self._future: Any = None

    def start(self) -> None:
        """Open the stream (PUBSUB_EMULATOR_HOST is honoured by the client library)."""
        from google.auth.exceptions import DefaultCredentialsError
        from google.cloud import pubsub_v1

        name = self._svc.settings.pubsub_subscription or ""
        if not name.startswith("projects/") or "/subscriptions/" not in name:
            raise ConfigError("EA_PUBSUB_SUBSCRIPTION must look like projects/PROJECT/subscriptions/NAME.")
        try:
            self._client = pubsub_v1.SubscriberClient()
        except DefaultCredentialsError as exc:
            raise ConfigError("EA_PUBSUB_SUBSCRIPTION is set but there are no Google credentials to pull with: set "
                              "GOOGLE_APPLICATION_CREDENTIALS to a service account key with the Pub/Sub Subscriber "
                              "role (see docs/google-setup.md).") from exc
        flow = pubsub_v1.types.FlowControl(max_messages=20)
        self._future = self._client.subscribe(name, callback=self._on_message, flow_control=flow)
        self._future.add_done_callback(self._on_stream_end)
        log.info("pulling Gmail notifications from %s", name)

    def _on_stream_end(self, future: Any) -> None:
        """The stream ends only when stopped, or on an error the client library does not retry (logged)."""
        if not future.cancelled() and future.exception() is not None:
            log.error("Pub/Sub pull from %s stopped: %s; polling continues every %s s",
                      self._svc.settings.pubsub_subscription, future.exception(), self._svc.settings.mail_poll_seconds)

    def _on_message(self, message: Any) -> None:
        """Runs in a Pub/Sub thread: hand over to the event loop, ack once the sync is safely queued."""
        try:
            note = parse_notification(message.data)
        except MalformedNotification as exc:
            log.warning("Pub/Sub message %s acknowledged and dropped: %s", message.message_id, exc)
            message.ack()
            return
        future = asyncio.run_coroutine_threadsafe(
            notify(self._svc, email=note.email, history_id=note.history_id, source="pull"), self._loop)
        try:
            outcome = future.result(timeout=DEFER_TIMEOUT)
        except Exception:  # not acked: Pub/Sub redelivers it
            log.exception("could not queue a sync for Pub/Sub message %s; it will be redelivered", message.message_id)
            message.nack()
            return
        message.ack()
        log.debug("Pub/Sub message %s: %s", message.message_id, outcome)

    def stop(self) -> None:
        """Close the stream and the client (blocking; call off the loop)."""
        if self._future is not None:
            self._future.cancel()
            try:
                self._future.result(timeout=10)
            except Exception as exc:  # cancellation surfaces here; anything else is worth a line in the log
                log.debug("pull stream ended: %s", type(exc).__name__)
        if self._client is not None:
            self._client.close()


async def poll_forever(svc: Services) -> None:
    """Every EA_MAIL_POLL_SECONDS, queue a sync of each connected mailbox (claimed, so one process polls each)."""
    every = svc.settings.mail_poll_seconds
    while True:
        try:
            async with svc.pool.connection() as conn:
                due = await mailboxes.claim_due_polls(conn, every_seconds=every)
            for mailbox_id in due:
                await defer_sync(svc.jobs, mailbox_id=mailbox_id)
        except Exception:  # the poller must outlive a database hiccup; the next tick tries again
            log.exception("mail poll failed; trying again in %s s", every)
        await asyncio.sleep(min(every, 5))


class MailListeners:
    """The pull subscriber (when configured) and the poller, run beside the server or the worker."""

    def __init__(self, svc: Services) -> None:
        self._svc = svc
        self._poller: asyncio.Task[None] | None = None
        self._pull: PullSubscriber | None = None

    async def start(self) -> None:
        """Start listening; nothing runs in local mode (no Gmail there)."""
        if self._svc.settings.local_mode:
            return
        if self._svc.settings.pubsub_subscription:
            self._pull = PullSubscriber(self._svc, asyncio.get_running_loop())
            await asyncio.to_thread(self._pull.start)
        self._poller = asyncio.create_task(poll_forever(self._svc), name="mail-poller")

    async def stop(self) -> None:
        """Stop both."""
        if self._poller is not None:
            self._poller.cancel()
            try:
                await self._poller
            except asyncio.CancelledError:
                log.debug("mail poller stopped")
        if self._pull is not None:
            await asyncio.to_thread(self._pull.stop)
