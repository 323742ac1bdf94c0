"""Pub/Sub push helpers: OIDC bearer tokens signed like Google's (and bad variants) plus push envelopes."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
import uuid
from typing import Any

from .google_oidc import FakeGoogleOIDC, SigningKey, make_signing_key, sign_jwt

GOOGLE_ISSUER = "https://accounts.google.com"


class PushSigner:
    """Mints the Authorization bearer JWTs Pub/Sub attaches to push requests, signed by a FakeGoogleOIDC key."""

    def __init__(
        self,
        oidc: FakeGoogleOIDC,
        *,
        audience: str,
        service_account_email: str = "gmail-push@test-project.iam.gserviceaccount.com",
        subscription: str = "projects/test-project/subscriptions/gmail-push",
        ttl: int = 3600,
    ) -> None:
        self.oidc = oidc
        self.audience = audience
        self.service_account_email = service_account_email
        self.subscription = subscription
        self.ttl = ttl
        self._forger: SigningKey | None = None

    def claims(self, **overrides: Any) -> dict[str, Any]:
        """The claims of a valid push token, with overrides applied (a None value drops the claim)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": GOOGLE_ISSUER, "aud": self.audience, "azp": "113774264463038321964",
            "sub": "113774264463038321964", "email": self.service_account_email, "email_verified": True,
            "iat": now, "exp": now + self.ttl,
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, **overrides: Any) -> str:
        """A valid push token (claims overridable, e.g. aud=..., email=...)."""
        return self.oidc.sign_id_token(self.claims(**overrides))

    def headers(self, token: str | None = None) -> dict[str, str]:
        """Request headers Pub/Sub sends with a push (Authorization bearer + JSON content type)."""
        return {"Authorization": f"Bearer {token or self.token()}", "Content-Type": "application/json"}

    def forged(self) -> str:
        """Valid-looking claims and the real kid, but signed by a key Google never published."""
        if self._forger is None:
            self._forger = make_signing_key(self.oidc.current_kid)
        return sign_jwt(self._forger, self.claims())

    def expired(self) -> str:
        """A token that expired an hour ago."""
        now = int(time.time())
        return self.token(iat=now - 2 * self.ttl, exp=now - self.ttl)

    def wrong_audience(self, audience: str = "https://attacker.example/push") -> str:
        """A token minted for another push endpoint."""
        return self.token(aud=audience)

    def wrong_email(self, email: str = "someone-else@other-project.iam.gserviceaccount.com") -> str:
        """A token for a service account other than the configured one."""
        return self.token(email=email)

    def unverified_email(self) -> str:
        """A token whose email_verified is false."""
        return self.token(email_verified=False)

    def wrong_issuer(self, issuer: str = "https://evil.example") -> str:
        """A token with a non-Google issuer."""
        return self.token(iss=issuer)

    def push_body(
        self,
        email: str,
        history_id: int | str,
        message_id: str | None = None,
        *,
        publish_time: dt.datetime | None = None,
        subscription: str | None = None,
    ) -> dict[str, Any]:
        """The JSON envelope Pub/Sub POSTs for a Gmail notification (data = standard base64 JSON)."""
        data = json.dumps({"emailAddress": email, "historyId": history_id}).encode()
        message_id = message_id or str(uuid.uuid4().int % 10**16)
        published = (publish_time or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        message = {"data": base64.b64encode(data).decode(), "messageId": message_id, "message_id": message_id,
                   "publishTime": published, "publish_time": published}
        return {"message": message, "subscription": subscription or self.subscription}
