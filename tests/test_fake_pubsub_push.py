"""The Pub/Sub push signer produces tokens and bodies google-auth verifies like real Gmail push requests."""

from __future__ import annotations

import base64
import json

import google.auth.transport.requests
import pytest
from google.oauth2 import id_token as google_id_token

from tests.google_fakes_shared import ALICE, PUSH_AUD, FakeGoogleOIDC, PushSigner, oidc  # noqa: F401 (fixture)

# ---- Pub/Sub push ----------------------------------------------------------------------------------

@pytest.fixture
def signer(oidc: FakeGoogleOIDC) -> PushSigner:
    """A push signer for PUSH_AUD."""
    return PushSigner(oidc, audience=PUSH_AUD)


def verify(oidc: FakeGoogleOIDC, token: str) -> dict:
    """Verify a push token the way the app should."""
    return google_id_token.verify_token(token, google.auth.transport.requests.Request(), audience=PUSH_AUD,
                                        certs_url=oidc.certs_url)


def test_push_token_verifies(oidc: FakeGoogleOIDC, signer: PushSigner) -> None:
    claims = verify(oidc, signer.token())
    assert (claims["iss"], claims["aud"], claims["email"], claims["email_verified"]) == (
        "https://accounts.google.com", PUSH_AUD, "gmail-push@test-project.iam.gserviceaccount.com", True)


@pytest.mark.parametrize(("variant", "message"), [
    ("forged", "Could not verify token signature"),
    ("expired", "Token expired"),
    ("wrong_audience", "Token has wrong audience"),
])
def test_push_token_bad_signature_time_audience_rejected(oidc, signer: PushSigner, variant: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        verify(oidc, getattr(signer, variant)())


def test_push_token_claims_the_app_must_check_itself(oidc: FakeGoogleOIDC, signer: PushSigner) -> None:
    assert verify(oidc, signer.wrong_email())["email"] == "someone-else@other-project.iam.gserviceaccount.com"
    assert verify(oidc, signer.unverified_email())["email_verified"] is False
    assert verify(oidc, signer.wrong_issuer())["iss"] == "https://evil.example"


def test_push_body_envelope(signer: PushSigner) -> None:
    body = signer.push_body(ALICE, 12345, message_id="m-1")
    assert json.loads(base64.b64decode(body["message"]["data"])) == {"emailAddress": ALICE, "historyId": 12345}
    assert body["message"]["messageId"] == body["message"]["message_id"] == "m-1"
    assert body["subscription"] == "projects/test-project/subscriptions/gmail-push"
    assert body["message"]["publishTime"].endswith("Z")
