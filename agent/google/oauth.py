"""Google OpenID Connect: scopes, the discovery document, and the authlib client for sign-in."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from agent.config import Settings

if TYPE_CHECKING:
    from authlib.integrations.starlette_client import OAuth

log = logging.getLogger(__name__)

GMAIL_SEND = "https://www.googleapis.com/auth/gmail.send"
GMAIL_READONLY = "https://www.googleapis.com/auth/gmail.readonly"
GMAIL_SCOPES = (GMAIL_SEND, GMAIL_READONLY)
"""Send as the user, and read the replies (history, messages, watch). Nothing that deletes or labels mail."""
SIGN_IN_SCOPES = ("openid", "email", "profile")
GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")

_discovery: dict[str, dict[str, Any]] = {}
_discovery_lock = asyncio.Lock()


async def discovery(settings: Settings) -> dict[str, Any]:
    """The OpenID Connect discovery document at EA_GOOGLE_DISCOVERY_URL, fetched once per process."""
    url = settings.google_discovery_url
    if url in _discovery:
        return _discovery[url]
    async with _discovery_lock:
        if url not in _discovery:
            import httpx  # loaded on the first sign-in or Gmail grant, not with the app

            async with httpx.AsyncClient(timeout=15) as client:
                resp = await client.get(url)
                resp.raise_for_status()
                doc = resp.json()
            if "token_endpoint" not in doc or "authorization_endpoint" not in doc:
                raise ValueError(f"{url} is not an OpenID Connect discovery document")
            _discovery[url] = doc
    return _discovery[url]


def make_oauth(settings: Settings) -> OAuth:
    """The authlib Starlette registry with the Google client (its metadata is fetched on first use)."""
    from authlib.integrations.starlette_client import OAuth  # authlib loads with the first sign-in

    oauth = OAuth()
    oauth.register(
        "google",
        client_id=settings.google_client_id,
        client_secret=settings.google_client_secret.get_secret_value() if settings.google_client_secret else None,
        server_metadata_url=settings.google_discovery_url,
        client_kwargs={"scope": " ".join(SIGN_IN_SCOPES + GMAIL_SCOPES), "code_challenge_method": "S256",
                       "timeout": 15},
    )
    return oauth


def missing_gmail_scopes(granted: str | list[str] | None) -> list[str]:
    """The Gmail scopes the user did not grant (Google lets them untick each one)."""
    have = set(granted.split() if isinstance(granted, str) else granted or ())
    return [s for s in GMAIL_SCOPES if s not in have]
