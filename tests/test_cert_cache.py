"""Google's push-signing certificates are fetched again only when their HTTP cache headers say so."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from runtime.google.pubsub import _certs_request


class _Certs(BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        body = b'{"kid": "cert"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "public, max-age=3600" if self.path == "/cached" else "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return


def test_certificates_are_cached_by_their_headers() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Certs)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        request = _certs_request()
        assert request is _certs_request(), "one transport for every push"
        for _ in range(3):
            assert request(f"{base}/cached", method="GET").status == 200
        assert _Certs.hits == 1, "max-age=3600: fetched once"
        for _ in range(2):
            request(f"{base}/fresh", method="GET")
        assert _Certs.hits == 3, "no-store: fetched every time"
    finally:
        server.shutdown()
        server.server_close()
