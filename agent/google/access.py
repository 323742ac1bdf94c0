"""Building a user's Gmail transport from the stored, encrypted grant (credentials cached per process)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from uuid import UUID

from psycopg_pool import AsyncConnectionPool

from agent.config import Settings
from agent.google import mailboxes, oauth
from agent.google.gmail import GmailTransport
from agent.keyring import KeyRing

if TYPE_CHECKING:
    from google.oauth2.credentials import Credentials

log = logging.getLogger(__name__)


class GoogleAccess:
    """Turns mailbox rows into Gmail transports; access tokens are reused until they expire."""

    def __init__(self, *, settings: Settings, pool: AsyncConnectionPool, keyring: KeyRing) -> None:
        self.settings = settings
        self._pool = pool
        self._keyring = keyring
        self._creds: dict[tuple[UUID, str], Credentials] = {}

    async def transport_for_mailbox(self, mailbox: dict[str, Any]) -> GmailTransport:
        """A transport for this mailbox; a disconnected one raises MailboxDisconnected on every call."""
        reason = None if mailbox["status"] == "connected" and mailbox["grant_enc"] else (
            mailbox["disconnect_reason"] or mailboxes.disconnected_reason("Gmail is not connected"))
        creds = None if reason else await self._credentials(mailbox)
        mailbox_id = mailbox["id"]

        async def on_revoked(why: str) -> None:
            await self.mark_disconnected(mailbox_id=mailbox_id, why=why)

        return GmailTransport(
            credentials=creds, api_url=self.settings.gmail_api_url, address=mailbox["email"],
            retry_base=self.settings.google_retry_base_seconds, max_attempts=self.settings.google_max_attempts,
            on_revoked=on_revoked, unavailable=reason,
        )

    async def transport_for_user(self, user_id: UUID) -> GmailTransport | None:
        """The user's Gmail transport, or None when they never connected Gmail."""
        async with self._pool.connection() as conn:
            mailbox = await mailboxes.for_user(conn, user_id=user_id)
        return None if mailbox is None else await self.transport_for_mailbox(mailbox)

    async def mark_disconnected(self, *, mailbox_id: UUID, why: str) -> None:
        """The grant stopped working: disconnect the mailbox and park its threads until the user reconnects."""
        self.forget(mailbox_id)
        reason = mailboxes.disconnected_reason(why)
        async with self._pool.connection() as conn:
            parked = await mailboxes.disconnect(conn, mailbox_id=mailbox_id, reason=reason)
        log.warning("mailbox %s disconnected (%s); %d thread(s) parked", mailbox_id, why, parked)

    def forget(self, mailbox_id: UUID) -> None:
        """Drop cached credentials of a mailbox (after a new grant or a disconnect)."""
        for key in [k for k in self._creds if k[0] == mailbox_id]:
            del self._creds[key]

    async def _credentials(self, mailbox: dict[str, Any]) -> Credentials:
        key = (mailbox["id"], mailbox["grant_enc"])
        creds = self._creds.get(key)
        if creds is None:
            from google.oauth2.credentials import Credentials  # google.auth loads on the first Gmail call

            grant = mailboxes.decrypt_grant(self._keyring, mailbox["grant_enc"])
            doc = await oauth.discovery(self.settings)
            secret = self.settings.google_client_secret
            creds = Credentials(
                token=None, refresh_token=grant.refresh_token, token_uri=doc["token_endpoint"],
                client_id=self.settings.google_client_id, client_secret=secret.get_secret_value() if secret else None,
            )
            self.forget(mailbox["id"])
            self._creds[key] = creds
        return creds
