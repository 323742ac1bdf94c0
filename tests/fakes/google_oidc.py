"""A fake Google OpenID Connect provider and OAuth 2.0 token endpoint on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from ._google_keys import SigningKey, SigningKeysMixin, make_signing_key, sign_jwt
from ._server import FakeServer, Request, Response, json_response

__all__ = ["FakeGoogleOIDC", "FakeUser", "SigningKey", "make_signing_key", "sign_jwt"]

AUTH_PATH = "/o/oauth2/v2/auth"
TOKEN_PATH = "/token"
USERINFO_PATH = "/v1/userinfo"
JWKS_PATH = "/oauth2/v3/certs"
CERTS_PATH = "/oauth2/v1/certs"
REVOKE_PATH = "/revoke"
DISCOVERY_PATH = "/.well-known/openid-configuration"


@dataclass
class FakeUser:
    """A Google account the fake can sign in."""

    sub: str
    email: str
    name: str
    email_verified: bool = True
    picture: str | None = None
    hd: str | None = None
    consented_clients: set[str] = field(default_factory=set)


class FakeGoogleOIDC(SigningKeysMixin, FakeServer):
    """Fake accounts.google.com + oauth2.googleapis.com: auto-consent authorize, token, userinfo, keys, revoke."""

    # Keys (rotate_keys, current_kid, sign_id_token, the JWKS/certs routes) come from SigningKeysMixin.

    def __init__(
        self,
        *,
        client_id: str = "test-client.apps.googleusercontent.com",
        client_secret: str = "test-client-secret",
        redirect_uris: Iterable[str] = (),
        issuer: str | None = None,
        access_token_ttl: int = 3599,
    ) -> None:
        super().__init__()
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uris: set[str] = set(redirect_uris)
        self.access_token_ttl = access_token_ttl
        self.code_ttl = 600
        self._issuer = issuer
        self._keys: list[SigningKey] = []
        self.users: dict[str, FakeUser] = {}
        self._next_logins: list[dict[str, Any]] = []
        self._codes: dict[str, dict[str, Any]] = {}
        self._access: dict[str, dict[str, Any]] = {}
        self._refresh: dict[str, dict[str, Any]] = {}
        self.authorize_requests: list[dict[str, str]] = []
        self.token_requests: list[dict[str, str]] = []
        self.revoked: list[str] = []

    # ---- URLs -------------------------------------------------------------------------------
    @property
    def issuer(self) -> str:
        """The `iss` of id tokens (base_url unless given)."""
        return self._issuer or self.base_url

    discovery_url = property(lambda self: self.base_url + DISCOVERY_PATH, doc="OIDC discovery document URL.")
    authorize_url = property(lambda self: self.base_url + AUTH_PATH, doc="Authorization endpoint.")
    token_url = property(lambda self: self.base_url + TOKEN_PATH, doc="Token endpoint.")
    userinfo_url = property(lambda self: self.base_url + USERINFO_PATH, doc="Userinfo endpoint.")
    jwks_url = property(lambda self: self.base_url + JWKS_PATH, doc="JWK set URL.")
    certs_url = property(lambda self: self.base_url + CERTS_PATH, doc="x509 PEM certs URL (verify_token certs_url).")
    revoke_url = property(lambda self: self.base_url + REVOKE_PATH, doc="Revocation endpoint.")

    # ---- test controls ----------------------------------------------------------------------
    def add_user(self, sub: str, email: str, name: str = "", *, email_verified: bool = True,
                 picture: str | None = None, hd: str | None = None) -> FakeUser:
        """Register a Google account; the first one added is the default auto-consent user."""
        with self._lock:
            user = FakeUser(sub, email.lower(), name or email.split("@")[0], email_verified, picture, hd)
            self.users[user.email] = user
            return user

    def next_login(self, email: str, *, granted_scopes: Iterable[str] | None = None, error: str | None = None) -> None:
        """Make the next authorize request sign in `email` (optionally granting fewer scopes, or failing with error)."""
        with self._lock:
            scopes = set(granted_scopes) if granted_scopes is not None else None
            self._next_logins.append({"email": email.lower(), "scopes": scopes, "error": error})

    def add_redirect_uri(self, uri: str) -> None:
        """Register an allowed redirect_uri."""
        with self._lock:
            self.redirect_uris.add(uri)

    def access_token_for(self, email: str, scopes: Iterable[str] = ("openid", "email")) -> str:
        """Mint a valid access token for email (auto-adding the user) without a browser flow."""
        with self._lock:
            self._ensure_user(email)
            return self._mint_access(email.lower(), set(scopes), None)

    def refresh_token_for(self, email: str, scopes: Iterable[str] = ("openid", "email")) -> str:
        """Mint a valid refresh token for email (auto-adding the user) for this client."""
        with self._lock:
            self._ensure_user(email)
            return self._mint_refresh(email.lower(), set(scopes))

    def email_for_access_token(self, token: str) -> str | None:
        """The email a live access token belongs to, else None (use as FakeGmail's token_validator)."""
        info = self._live_access(token)
        return info["email"] if info else None

    def scopes_for_access_token(self, token: str) -> set[str] | None:
        """The scopes of a live access token, else None."""
        info = self._live_access(token)
        return set(info["scopes"]) if info else None

    def revoke_refresh_token(self, token: str) -> None:
        """Revoke a refresh token and the access tokens minted from it."""
        with self._lock:
            if token in self._refresh:
                self._refresh[token]["revoked"] = True
            for info in self._access.values():
                if info["refresh"] == token:
                    info["revoked"] = True

    def revoke_all_for(self, email: str) -> None:
        """Revoke every token of email and forget its consent (next login issues a refresh token again)."""
        email = email.lower()
        with self._lock:
            for table in (self._refresh, self._access):
                for info in table.values():
                    if info["email"] == email:
                        info["revoked"] = True
            if email in self.users:
                self.users[email].consented_clients.clear()

    def expire_access_tokens(self, email: str | None = None) -> None:
        """Make current access tokens (of email, or all) expired."""
        with self._lock:
            for info in self._access.values():
                if email is None or info["email"] == email.lower():
                    info["expires_at"] = 0.0

    # ---- internals --------------------------------------------------------------------------
    def _on_start(self) -> None:
        if not self._keys:
            self._keys = [make_signing_key()]

    def _error_response(self, status: int, reason: str | None) -> Response:
        error = reason or ("temporarily_unavailable" if status in (429, 503) else "internal_failure")
        return json_response(status, {"error": error, "error_description": "Injected failure"})

    def _ensure_user(self, email: str) -> FakeUser:
        email = email.lower()
        if email not in self.users:
            self.add_user(str(100000000000000000000 + len(self.users) + 1), email)
        return self.users[email]

    def _mint_access(self, email: str, scopes: set[str], refresh: str | None) -> str:
        token = "ya29.fake-" + secrets.token_urlsafe(24)
        self._access[token] = {"email": email, "scopes": scopes, "refresh": refresh, "revoked": False,
                               "expires_at": time.time() + self.access_token_ttl}
        return token

    def _mint_refresh(self, email: str, scopes: set[str]) -> str:
        token = "1//fake-" + secrets.token_urlsafe(32)
        self._refresh[token] = {"email": email, "scopes": scopes, "client_id": self.client_id, "revoked": False}
        return token

    def _live_access(self, token: str) -> dict[str, Any] | None:
        with self._lock:
            info = self._access.get(token)
            if not info or info["revoked"] or info["expires_at"] <= time.time():
                return None
            return info

    def _id_token(self, user: FakeUser, access_token: str, nonce: str | None) -> str:
        now = int(time.time())
        digest = hashlib.sha256(access_token.encode()).digest()
        claims: dict[str, Any] = {
            "iss": self.issuer, "azp": self.client_id, "aud": self.client_id, "sub": user.sub,
            "email": user.email, "email_verified": user.email_verified, "name": user.name,
            "at_hash": base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode(), "iat": now, "exp": now + 3600,
        }
        claims.update({k: v for k, v in (("nonce", nonce), ("picture", user.picture), ("hd", user.hd)) if v})
        return self.sign_id_token(claims)

    def _token_payload(self, user: FakeUser, scopes: set[str], refresh: str | None, nonce: str | None) -> dict:
        access = self._mint_access(user.email, scopes, refresh)
        body: dict[str, Any] = {"access_token": access, "expires_in": self.access_token_ttl,
                                "scope": " ".join(sorted(scopes)), "token_type": "Bearer"}
        if "openid" in scopes:
            body["id_token"] = self._id_token(user, access, nonce)
        return body

    # ---- routes -----------------------------------------------------------------------------
    def _handle(self, req: Request) -> Response:
        routes = {
            ("GET", DISCOVERY_PATH): self._discovery, ("GET", AUTH_PATH): self._authorize,
            ("POST", TOKEN_PATH): self._token, ("GET", USERINFO_PATH): self._userinfo,
            ("GET", "/userinfo"): self._userinfo, ("GET", JWKS_PATH): self._jwks, ("GET", "/jwks"): self._jwks,
            ("GET", CERTS_PATH): self._certs, ("POST", REVOKE_PATH): self._revoke,
        }
        route = routes.get((req.method, req.path))
        if route is None:
            return json_response(404, {"error": "not_found", "error_description": f"{req.method} {req.path}"})
        return route(req)

    def _discovery(self, req: Request) -> Response:
        return json_response(200, {
            "issuer": self.issuer, "authorization_endpoint": self.authorize_url, "token_endpoint": self.token_url,
            "userinfo_endpoint": self.userinfo_url, "revocation_endpoint": self.revoke_url, "jwks_uri": self.jwks_url,
            "response_types_supported": ["code"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"], "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "claims_supported": ["aud", "email", "email_verified", "exp", "iat", "iss", "name", "picture", "sub"],
            "code_challenge_methods_supported": ["plain", "S256"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
        })

    def _authorize(self, req: Request) -> Response:
        params = {k: v[0] for k, v in req.query.items()}
        with self._lock:
            self.authorize_requests.append(params)
            if params.get("client_id") != self.client_id:
                return json_response(401, {"error": "invalid_client",
                                           "error_description": "The OAuth client was not found."})
            redirect_uri = params.get("redirect_uri", "")
            if redirect_uri not in self.redirect_uris:
                return json_response(400, {"error": "redirect_uri_mismatch", "error_description":
                                           f"{redirect_uri!r} is not registered; call add_redirect_uri()"})
            if not params.get("scope"):
                return json_response(400, {"error": "invalid_request",
                                           "error_description": "Missing required parameter: scope"})
            login = self._next_logins.pop(0) if self._next_logins else None
            reply: dict[str, str] = {}
            if params.get("response_type") != "code":
                reply["error"] = "unsupported_response_type"
            elif login and login["error"]:
                reply["error"] = login["error"]
            elif not self.users and not login:
                return json_response(400, {"error": "no_user", "error_description": "call add_user() or next_login()"})
            else:
                user = self._ensure_user(login["email"]) if login else next(iter(self.users.values()))
                requested = set(params["scope"].split())
                granted = requested & login["scopes"] if login and login["scopes"] is not None else requested
                code = "4/fake-" + secrets.token_urlsafe(24)
                self._codes[code] = {
                    "email": user.email, "scopes": granted, "redirect_uri": redirect_uri, "nonce": params.get("nonce"),
                    "challenge": params.get("code_challenge"), "method": params.get("code_challenge_method", "plain"),
                    "offline": params.get("access_type") == "offline", "consent": "consent" in params.get("prompt", ""),
                    "expires_at": time.time() + self.code_ttl,
                }
                reply.update(code=code, scope=" ".join(sorted(granted)))
            if "state" in params:
                reply["state"] = params["state"]
        sep = "&" if "?" in redirect_uri else "?"
        return Response(302, b"", {"Location": redirect_uri + sep + urlencode(reply)})

    def _client_ok(self, req: Request, form: dict[str, str]) -> bool:
        basic = req.basic()
        client_id, secret = basic if basic else (form.get("client_id"), form.get("client_secret"))
        return client_id == self.client_id and secret == self.client_secret

    def _token(self, req: Request) -> Response:
        form = req.form()
        with self._lock:
            self.token_requests.append(form)
            if not self._client_ok(req, form):
                return json_response(401, {"error": "invalid_client", "error_description": "Unauthorized"})
            grant = form.get("grant_type")
            if grant == "authorization_code":
                return self._exchange_code(form)
            if grant == "refresh_token":
                return self._refresh_grant(form)
            return json_response(400, {"error": "unsupported_grant_type",
                                       "error_description": "Invalid grant_type: " + str(grant)})

    def _exchange_code(self, form: dict[str, str]) -> Response:
        info = self._codes.pop(form.get("code", ""), None)
        if info is None or info["expires_at"] < time.time():
            return json_response(400, {"error": "invalid_grant", "error_description": "Malformed auth code."})
        if form.get("redirect_uri") != info["redirect_uri"]:
            return json_response(400, {"error": "redirect_uri_mismatch", "error_description": "Bad Request"})
        if info["challenge"]:
            verifier = form.get("code_verifier", "")
            if info["method"] == "S256":
                verifier = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if verifier != info["challenge"]:
                return json_response(400, {"error": "invalid_grant", "error_description": "Invalid code verifier."})
        user = self.users[info["email"]]
        refresh = None
        if info["offline"] and (info["consent"] or self.client_id not in user.consented_clients):
            refresh = self._mint_refresh(user.email, info["scopes"])
        user.consented_clients.add(self.client_id)
        body = self._token_payload(user, info["scopes"], refresh, info["nonce"])
        if refresh:
            body["refresh_token"] = refresh
        return json_response(200, body, {"Cache-Control": "no-store"})

    def _refresh_grant(self, form: dict[str, str]) -> Response:
        info = self._refresh.get(form.get("refresh_token", ""))
        if info is None or info["revoked"]:
            return json_response(400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."})
        if info["client_id"] != self.client_id:
            return json_response(400, {"error": "unauthorized_client", "error_description": "Unauthorized"})
        scopes = set(form["scope"].split()) if form.get("scope") else set(info["scopes"])
        if not scopes <= info["scopes"]:
            return json_response(400, {"error": "invalid_scope", "error_description": "Bad Request"})
        body = self._token_payload(self.users[info["email"]], scopes, form["refresh_token"], None)
        return json_response(200, body, {"Cache-Control": "no-store"})

    def _userinfo(self, req: Request) -> Response:
        info = self._live_access(req.bearer() or "")
        if info is None:
            return json_response(401, {"error": "invalid_request", "error_description": "Invalid Credentials"},
                                 {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", error="invalid_token"'})
        user = self.users[info["email"]]
        body = {"sub": user.sub, "email": user.email, "email_verified": user.email_verified, "name": user.name}
        body.update({k: v for k, v in (("picture", user.picture), ("hd", user.hd)) if v})
        return json_response(200, body)

    def _revoke(self, req: Request) -> Response:
        token = req.form().get("token") or req.arg("token") or ""
        with self._lock:
            self.revoked.append(token)
            if token in self._refresh and not self._refresh[token]["revoked"]:
                self.revoke_refresh_token(token)
            elif token in self._access and not self._access[token]["revoked"]:
                self._access[token]["revoked"] = True
                if self._access[token]["refresh"]:
                    self.revoke_refresh_token(self._access[token]["refresh"])
            else:
                return json_response(400, {"error": "invalid_token", "error_description": "Token expired or revoked"})
        return json_response(200, {})
