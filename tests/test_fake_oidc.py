"""The fake Google OIDC provider answers the real client libraries (authlib, google-auth) like Google does."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

import google.auth.transport.requests
import pytest
import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.integrations.requests_client import OAuth2Session
from google.auth.exceptions import RefreshError
from google.oauth2 import id_token as google_id_token
from google.oauth2.credentials import Credentials
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.google_fakes_shared import ALICE, REDIRECT, SCOPE, SEND, FakeGoogleOIDC, oidc  # noqa: F401 (fixture)


def login(oidc: FakeGoogleOIDC, session: OAuth2Session, **params: str) -> str:
    """Follow the authorize redirect like a browser; returns the callback URL."""
    url, _ = session.create_authorization_url(oidc.authorize_url, **params)
    resp = requests.get(url, allow_redirects=False, timeout=5)
    assert resp.status_code == 302
    return resp.headers["Location"]


# ---- OIDC / OAuth --------------------------------------------------------------------------------

def test_discovery_points_at_the_fake(oidc: FakeGoogleOIDC) -> None:
    doc = requests.get(oidc.discovery_url, timeout=5).json()
    assert doc["issuer"] == oidc.base_url
    assert doc["authorization_endpoint"] == oidc.base_url + "/o/oauth2/v2/auth"
    assert doc["token_endpoint"] == oidc.base_url + "/token"
    assert doc["jwks_uri"] == oidc.base_url + "/oauth2/v3/certs"
    assert doc["userinfo_endpoint"] == oidc.base_url + "/v1/userinfo"
    assert doc["revocation_endpoint"] == oidc.base_url + "/revoke"
    assert [k["kid"] for k in requests.get(oidc.jwks_url, timeout=5).json()["keys"]] == [oidc.current_kid]
    assert list(requests.get(oidc.certs_url, timeout=5).json()) == [oidc.current_kid]


def test_authlib_code_exchange_refresh_and_revocation(oidc: FakeGoogleOIDC) -> None:
    session = OAuth2Session(oidc.client_id, oidc.client_secret, scope=SCOPE, redirect_uri=REDIRECT)
    callback = login(oidc, session, state="st-1", nonce="n-123", access_type="offline", prompt="consent",
                     include_granted_scopes="true")
    query = parse_qs(urlsplit(callback).query)
    assert callback.startswith(REDIRECT + "?") and query["state"] == ["st-1"]
    seen = oidc.authorize_requests[-1]
    assert (seen["nonce"], seen["access_type"], seen["prompt"], seen["include_granted_scopes"]) == (
        "n-123", "offline", "consent", "true")
    assert seen["scope"] == SCOPE

    token = session.fetch_token(oidc.token_url, authorization_response=callback)
    assert token["refresh_token"].startswith("1//") and token["token_type"] == "Bearer"
    assert set(token["scope"].split()) == set(SCOPE.split())
    claims = jwt.decode(token["id_token"], KeySet.import_key_set(requests.get(oidc.jwks_url, timeout=5).json())).claims
    assert (claims["iss"], claims["aud"], claims["sub"], claims["email"]) == (
        oidc.base_url, oidc.client_id, "110000000000000000001", ALICE)
    assert claims["email_verified"] is True and claims["nonce"] == "n-123"
    at_hash = base64.urlsafe_b64encode(hashlib.sha256(token["access_token"].encode()).digest()[:16]).rstrip(b"=")
    assert claims["at_hash"] == at_hash.decode()
    info = requests.get(oidc.userinfo_url, headers={"Authorization": "Bearer " + token["access_token"]}, timeout=5)
    assert info.json() == {"sub": "110000000000000000001", "email": ALICE, "email_verified": True,
                           "name": "Alice Example"}

    refreshed = session.refresh_token(oidc.token_url, refresh_token=token["refresh_token"])
    assert refreshed["access_token"] != token["access_token"]
    assert oidc.email_for_access_token(refreshed["access_token"]) == ALICE

    oidc.revoke_refresh_token(token["refresh_token"])
    assert oidc.email_for_access_token(refreshed["access_token"]) is None
    with pytest.raises(OAuthError) as err:
        session.refresh_token(oidc.token_url, refresh_token=token["refresh_token"])
    assert err.value.error == "invalid_grant"
    assert err.value.description == "Token has been expired or revoked."


def test_refresh_token_only_for_offline_first_consent_or_prompt_consent(oidc: FakeGoogleOIDC) -> None:
    session = OAuth2Session(oidc.client_id, oidc.client_secret, scope=SCOPE, redirect_uri=REDIRECT)
    online = session.fetch_token(oidc.token_url, authorization_response=login(oidc, session))
    assert "refresh_token" not in online
    first = session.fetch_token(oidc.token_url, authorization_response=login(oidc, session, access_type="offline"))
    assert "refresh_token" not in first  # already consented while online, like Google
    oidc.revoke_all_for(ALICE)
    again = session.fetch_token(oidc.token_url, authorization_response=login(oidc, session, access_type="offline"))
    assert again["refresh_token"].startswith("1//")
    forced = session.fetch_token(oidc.token_url, authorization_response=login(
        oidc, session, access_type="offline", prompt="consent"))
    assert forced["refresh_token"] != again["refresh_token"]


def test_login_controls_user_scopes_and_denial(oidc: FakeGoogleOIDC) -> None:
    oidc.add_user("220", "carol@example.com", "Carol")
    session = OAuth2Session(oidc.client_id, oidc.client_secret, scope=SCOPE, redirect_uri=REDIRECT)
    oidc.next_login("carol@example.com", granted_scopes=["openid", "email"])
    token = session.fetch_token(oidc.token_url, authorization_response=login(oidc, session, nonce="x"))
    assert token["scope"] == "email openid"
    assert oidc.email_for_access_token(token["access_token"]) == "carol@example.com"
    oidc.next_login(ALICE, error="access_denied")
    assert parse_qs(urlsplit(login(oidc, session, state="s9")).query) == {"error": ["access_denied"], "state": ["s9"]}


def test_authorize_rejects_unregistered_redirect_and_unknown_client(oidc: FakeGoogleOIDC) -> None:
    bad_redirect = OAuth2Session(oidc.client_id, scope=SCOPE, redirect_uri="http://evil.example/cb")
    url, _ = bad_redirect.create_authorization_url(oidc.authorize_url)
    resp = requests.get(url, allow_redirects=False, timeout=5)
    assert (resp.status_code, resp.json()["error"]) == (400, "redirect_uri_mismatch")
    stranger = OAuth2Session("other.apps.googleusercontent.com", scope=SCOPE, redirect_uri=REDIRECT)
    resp = requests.get(stranger.create_authorization_url(oidc.authorize_url)[0], allow_redirects=False, timeout=5)
    assert (resp.status_code, resp.json()["error"]) == (401, "invalid_client")


def test_wrong_client_secret_is_invalid_client(oidc: FakeGoogleOIDC) -> None:
    session = OAuth2Session(oidc.client_id, "not-the-secret", scope=SCOPE, redirect_uri=REDIRECT)
    callback = login(oidc, session)
    with pytest.raises(OAuthError) as err:
        session.fetch_token(oidc.token_url, authorization_response=callback)
    assert err.value.error == "invalid_client"
    assert oidc.requests[-1]["status"] == 401


async def test_async_client_pkce_exchange_and_refresh(oidc: FakeGoogleOIDC) -> None:
    async with AsyncOAuth2Client(oidc.client_id, oidc.client_secret, scope=SCOPE, redirect_uri=REDIRECT,
                                 code_challenge_method="S256", token_endpoint_auth_method="client_secret_post") as c:
        verifier = "v" * 64
        url, _ = c.create_authorization_url(oidc.authorize_url, code_verifier=verifier, access_type="offline")
        callback = (await c.request("GET", url, withhold_token=True, follow_redirects=False)).headers["location"]
        assert oidc.authorize_requests[-1]["code_challenge_method"] == "S256"
        token = await c.fetch_token(oidc.token_url, authorization_response=callback, code_verifier=verifier)
        assert oidc.token_requests[-1]["code_verifier"] == verifier
        assert oidc.email_for_access_token(token["access_token"]) == ALICE
        refreshed = await c.refresh_token(oidc.token_url, refresh_token=token["refresh_token"])
        assert oidc.email_for_access_token(refreshed["access_token"]) == ALICE
        oidc.revoke_all_for(ALICE)
        with pytest.raises(OAuthError) as err:
            await c.refresh_token(oidc.token_url, refresh_token=token["refresh_token"])
        assert err.value.error == "invalid_grant"


def test_google_auth_credentials_refresh_and_revoked(oidc: FakeGoogleOIDC) -> None:
    refresh = oidc.refresh_token_for(ALICE, ["openid", "email", SEND])
    creds = Credentials(token=None, refresh_token=refresh, token_uri=oidc.token_url,
                        client_id=oidc.client_id, client_secret=oidc.client_secret)
    creds.refresh(google.auth.transport.requests.Request())
    assert creds.valid and oidc.email_for_access_token(creds.token) == ALICE
    assert oidc.token_requests[-1]["grant_type"] == "refresh_token"
    assert google_id_token.verify_token(creds.id_token, google.auth.transport.requests.Request(),
                                        audience=oidc.client_id, certs_url=oidc.certs_url)["email"] == ALICE
    oidc.revoke_refresh_token(refresh)
    with pytest.raises(RefreshError, match="invalid_grant: Token has been expired or revoked."):
        creds.refresh(google.auth.transport.requests.Request())
