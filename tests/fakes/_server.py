"""Shared plumbing for the local HTTP fakes: a threaded JSON server with a request log and error injection."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, unquote_plus, urlsplit

logger = logging.getLogger("tests.fakes")

_STATUS_NAMES = {
    400: ("INVALID_ARGUMENT", "badRequest", "global", "Bad Request"),
    401: ("UNAUTHENTICATED", "authError", "global", "Invalid Credentials"),
    403: ("PERMISSION_DENIED", "forbidden", "global", "The caller does not have permission"),
    404: ("NOT_FOUND", "notFound", "global", "Requested entity was not found."),
    429: ("RESOURCE_EXHAUSTED", "rateLimitExceeded", "usageLimits", "User-rate limit exceeded."),
    500: ("INTERNAL", "backendError", "global", "Internal error encountered."),
    501: ("UNIMPLEMENTED", "notImplemented", "global", "Not implemented."),
    503: ("UNAVAILABLE", "backendError", "global", "The service is currently unavailable."),
}


@dataclass
class Request:
    """One parsed incoming HTTP request."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    client: tuple[str, int] | None = None
    """The caller's (host, port), so a test can tell which process sent the request."""
    received: float = field(default_factory=time.monotonic)
    """time.monotonic() when the request arrived (before its body was read), for latency measurements."""

    def arg(self, name: str, default: str | None = None) -> str | None:
        """First value of a query parameter."""
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        """Body parsed as JSON ({} when empty)."""
        return json.loads(self.body) if self.body else {}

    def form(self) -> dict[str, str]:
        """Body parsed as a form (or JSON object), single-valued."""
        if self.headers.get("content-type", "").startswith("application/json"):
            return {k: str(v) for k, v in self.json().items()}
        return {k: v[0] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}

    def bearer(self) -> str | None:
        """The Bearer token from the Authorization header."""
        auth = self.headers.get("authorization", "")
        return auth[7:].strip() if auth[:7].lower() == "bearer " else None

    def basic(self) -> tuple[str, str] | None:
        """(user, password) from a Basic Authorization header."""
        auth = self.headers.get("authorization", "")
        if auth[:6].lower() != "basic ":
            return None
        user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        return unquote_plus(user), unquote_plus(password)


@dataclass
class Response:
    """An HTTP response to send back."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    """A JSON response."""
    hdrs = {"Content-Type": "application/json; charset=UTF-8", **(headers or {})}
    return Response(status, json.dumps(payload).encode(), hdrs)


def google_error(status: int, message: str | None = None, reason: str | None = None) -> Response:
    """A Google API style error body ({"error": {"code", "message", "errors", "status"}})."""
    state, default_reason, domain, default_msg = _STATUS_NAMES.get(status, ("UNKNOWN", "unknown", "global", "Error"))
    msg = message or default_msg
    err = {"message": msg, "domain": domain, "reason": reason or default_reason}
    headers: dict[str, str] = {}
    if status == 401:
        err.update(message="Invalid Credentials", location="Authorization", locationType="header")
        headers["WWW-Authenticate"] = 'Bearer realm="https://accounts.google.com/", error="invalid_token"'
    return json_response(status, {"error": {"code": status, "message": msg, "errors": [err], "status": state}}, headers)


class FakeServer:
    """Base for a fake Google service on 127.0.0.1 served from a daemon thread."""

    keep_alive = False
    """Answer HTTP/1.1 and keep connections open, as Google does (a bench's choice; tests keep one request per
    connection, so a stopped fake never answers late)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._injected: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.after_handle: list[Callable[[Request, Response], None]] = []
        """Called once a request is handled, before the answer goes out (e.g. a crash test kills the caller)."""

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:PORT (no trailing slash); only valid after start()."""
        if self._httpd is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> Self:
        """Bind a free port and serve in a daemon thread."""
        if self._httpd is not None:
            return self
        self._on_start()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name=type(self).__name__,
                                        daemon=True)
        self._thread.start()
        logger.debug("%s listening on %s", type(self).__name__, self.base_url)
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def inject_errors(
        self, status: int, count: int = 1, path_contains: str = "", *, reason: str | None = None, retry_after: int = 1,
        after_store: bool = False,
    ) -> None:
        """Answer the next `count` matching requests with a Google-style error (after_store: do the request first)."""
        with self._lock:
            self._injected.append(
                {"status": status, "count": count, "path": path_contains, "reason": reason, "retry_after": retry_after,
                 "after_store": after_store}
            )

    def _on_start(self) -> None:
        """Hook run by start() before binding (e.g. generate keys)."""

    def _handle(self, req: Request) -> Response:
        """Route one request; subclasses implement."""
        raise NotImplementedError

    def _error_response(self, status: int, reason: str | None) -> Response:
        """The body used for injected errors."""
        return google_error(status, reason=reason)

    def _take_injected(self, req: Request) -> tuple[Response, bool] | None:
        """The injected error for this request and whether it is answered after handling the request."""
        with self._lock:
            for rule in self._injected:
                if rule["count"] > 0 and rule["path"] in req.path:
                    rule["count"] -= 1
                    resp = self._error_response(rule["status"], rule["reason"])
                    if rule["status"] in (429, 503):
                        resp.headers["Retry-After"] = str(rule["retry_after"])
                    return resp, rule["after_store"]
            self._injected = [r for r in self._injected if r["count"] > 0]
        return None

    def _serve(self, req: Request) -> Response:
        injected = self._take_injected(req)
        resp = injected[0] if injected and not injected[1] else None
        if resp is None:
            try:
                resp = self._handle(req)
            except Exception:  # a bug in the fake must surface as a 500 the test can see
                logger.exception("%s failed on %s %s", type(self).__name__, req.method, req.path)
                resp = google_error(500, "fake crashed; see log")
            for hook in list(self.after_handle):
                hook(req, resp)
            if injected:
                logger.debug("%s did %s %s, then answers the injected %d", type(self).__name__, req.method,
                             req.path, injected[0].status)
                resp = injected[0]
        try:
            body: Any = req.json() if req.body and "json" in req.headers.get("content-type", "") else (
                req.form() if req.body and "form" in req.headers.get("content-type", "") else None
            )
        except ValueError:
            body = None
        with self._lock:
            self.requests.append(
                {"method": req.method, "path": req.path, "query": req.query, "headers": req.headers,
                 "body": body, "status": resp.status, "at": req.received}
            )
        return resp


def _make_handler(fake: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1" if fake.keep_alive else "HTTP/1.0"
        disable_nagle_algorithm = True  # no delayed-ACK stall between the headers' and the body's writes

        def _dispatch(self) -> None:
            received = time.monotonic()
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            req = Request(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query, keep_blank_values=True),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=self.rfile.read(length) if length else b"",
                client=(self.client_address[0], self.client_address[1]),
                received=received,
            )
            resp = fake._serve(req)
            self.send_response(resp.status)
            for name, value in resp.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(resp.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(resp.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            logger.debug("%s: " + format, type(fake).__name__, *args)

    return Handler
