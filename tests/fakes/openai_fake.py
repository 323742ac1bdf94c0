"""A local OpenAI-compatible HTTP server that real OpenAI clients can talk to in tests."""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

Responder = Callable[[dict], "str | dict"]

_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 429: "rate_limit_error"}


def _error_body(status: int, message: str) -> dict[str, Any]:
    """Build an OpenAI-style error payload."""
    etype = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": etype, "param": None, "code": etype}}


def _route(path: str) -> str:
    """Normalise a request path for routing."""
    return urlsplit(path).path.rstrip("/")


def _pick_tool(body: dict) -> str | None:
    """Return the tool name to call: the forced one, else the first; None for plain content."""
    tools = body.get("tools") or []
    choice = body.get("tool_choice")
    if not tools or choice == "none":
        return None
    if isinstance(choice, dict) and choice.get("function", {}).get("name"):
        return str(choice["function"]["name"])
    return str(tools[0].get("function", {}).get("name"))


class _Server(ThreadingHTTPServer):
    """Threading HTTP server that knows its owning FakeOpenAI."""

    daemon_threads = True
    request_queue_size = 256  # many clients waiting on a slow model at once must not be refused by the backlog
    fake: FakeOpenAI

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Cut open keep-alive connections so pooled clients cannot reach a stopped fake."""
        with self.connections_lock:
            conns, self.connections = self.connections, set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("openai fake: error handling request from %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    """Request handler for the fake OpenAI API."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle's algorithm the body waits for the client's delayed ACK
    # (~40 ms a request on Linux), which no real endpoint adds: a "0 s" model must answer in about a millisecond.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        logger.debug("openai fake: " + format, *args)

    def _send_json(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, status: int, message: str) -> None:
        retry = self.server.fake.retry_after_ms
        headers = {"retry-after-ms": str(retry)} if retry is not None else None
        self._send_json(status, _error_body(status, message), headers)

    def do_GET(self) -> None:
        if _route(self.path) == "/v1/models":
            model = {"id": "gpt-4o-mini", "object": "model", "created": 0, "owned_by": "fake"}
            self._send_json(200, {"object": "list", "data": [model]})
        else:
            self._send_error(404, f"unknown path {self.path}")

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if _route(self.path) != "/v1/chat/completions":
            self._send_error(404, f"unknown path {self.path}")
            return
        try:
            body = json.loads(raw or b"null")
            error = None if isinstance(body, dict) else "body must be a JSON object"
        except ValueError as exc:
            error = f"invalid JSON body: {exc}"
        if error is not None:
            self._send_error(400, error)
            return
        fake = self.server.fake
        if fake.latency_seconds > 0:
            time.sleep(fake.latency_seconds)  # a slow model: each request thread waits, requests overlap
        failure = fake._record(body)
        if failure is not None:
            self._send_error(*failure)
            return
        if (responder := fake.responder) is None:
            self._send_error(500, "no responder configured on FakeOpenAI")
            return
        delay = fake._take_delay()
        if delay:
            time.sleep(delay)  # slower than the client's timeout: the client gives up, the answer goes nowhere
        for hook in list(fake.before_answer):
            hook(body, (self.client_address[0], self.client_address[1]))
        try:
            answer = responder(body)
        except Exception as exc:  # surfaced to the client as a 500 so the test fails loudly
            logger.debug("openai fake: responder raised", exc_info=True)
            self._send_error(500, f"responder raised {type(exc).__name__}: {exc}")
            return
        text = fake._malform(answer if isinstance(answer, str) else json.dumps(answer))
        tool = _pick_tool(body)
        if body.get("stream"):
            self._stream(body, text, tool)
        else:
            self._send_json(200, self._completion(body, text, tool))

    def _completion(self, body: dict, text: str, tool: str | None) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": None if tool else text, "refusal": None}
        if tool is not None:
            message["tool_calls"] = [_tool_call(tool, text)]
        finish = "tool_calls" if tool else "stop"
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
        return {**_envelope(body, "chat.completion"), "choices": [choice], "usage": _usage(body, text)}

    def _stream(self, body: dict, text: str, tool: str | None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        base = _envelope(body, "chat.completion.chunk")
        with_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        pieces = re.findall(r"\S+\s*|\s+", text) or [""]

        def chunk(delta: dict, finish: str | None = None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return {**base, "choices": [choice], **({"usage": None} if with_usage else {})}

        if tool is not None:
            call = _tool_call(tool, "")
            events = [chunk({"role": "assistant", "content": None, "tool_calls": [{"index": 0, **call}]})]
            events += [chunk({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}) for p in pieces]
        else:
            events = [chunk({"role": "assistant", "content": "", "refusal": None})]
            events += [chunk({"content": p}) for p in pieces]
        events.append(chunk({}, "tool_calls" if tool else "stop"))
        if with_usage:
            events.append({**base, "choices": [], "usage": _usage(body, text)})
        try:
            for event in events:
                self._write_chunk(f"data: {json.dumps(event)}\n\n".encode())
            self._write_chunk(b"data: [DONE]\n\n")
            self._write_chunk(b"")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


def _envelope(body: dict, obj: str) -> dict[str, Any]:
    """Common top-level fields of a completion or chunk."""
    return {"id": f"chatcmpl-fake{uuid.uuid4().hex[:20]}", "object": obj, "created": int(time.time()),
            "model": body.get("model") or "gpt-4o-mini", "system_fingerprint": "fp_fake"}


def _tool_call(name: str, arguments: str) -> dict[str, Any]:
    """One function tool call entry."""
    call_id = f"call_fake{uuid.uuid4().hex[:16]}"
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _usage(body: dict, text: str) -> dict[str, Any]:
    """Token usage block with rough counts."""
    prompt = max(1, len(json.dumps(body.get("messages") or [])) // 4)  # ~4 chars per token
    completion = max(1, len(text) // 4)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0}}


def _cut_json(text: str) -> str:
    return text[: max(1, len(text) // 2)]


def _drop_fields(text: str) -> str:
    try:
        obj = json.loads(text)
    except ValueError:
        return "{}"
    if not isinstance(obj, dict) or not obj:
        return "{}"
    first = next(iter(obj))
    return json.dumps({first: obj[first]} if len(obj) > 1 else {})


def _wrong_enum(text: str) -> str:
    try:
        obj = json.loads(text)
    except ValueError:
        return json.dumps({"intent": "maybe_later"})
    if not isinstance(obj, dict):
        return json.dumps({"intent": "maybe_later"})
    if "intent" in obj:
        return json.dumps({**obj, "intent": "maybe_later", "confidence": 7})
    return json.dumps({k: 42 if isinstance(v, str) else v for k, v in obj.items()})


MALFORMED_KINDS: dict[str, Callable[[str], str]] = {
    "invalid_json": _cut_json, "missing_fields": _drop_fields, "wrong_enum": _wrong_enum}


class FakeOpenAI:
    """A local OpenAI-compatible chat-completions server on 127.0.0.1 (free port)."""

    def __init__(self, responder: Responder | None = None, *, latency_seconds: float = 0.0) -> None:
        self.responder: Responder | None = responder
        self.latency_seconds = latency_seconds
        """How long every chat request waits before it is answered (settable while running)."""
        self.requests: list[dict] = []
        self.arrivals: list[float] = []
        """time.monotonic() at which each of `requests` arrived."""
        self.retry_after_ms: int | None = 1  # error responses ask clients to retry almost at once
        self._lock = threading.Lock()
        self._fail_count, self._fail = 0, (500, "fake failure")
        self._fail_forever: tuple[int, str] | None = None
        self._malformed: tuple[str, int | None] | None = None
        self._delays: list[float] = []
        self.before_answer: list[Callable[[dict, tuple[str, int]], None]] = []
        """Called with (request body, caller address) before a chat answer is computed (e.g. to kill the caller)."""
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeOpenAI is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> FakeOpenAI:
        if self._server is None:
            self._server = _Server(("127.0.0.1", 0))
            self._server.fake = self
            self._thread = threading.Thread(
                target=self._server.serve_forever, args=(0.05,), name="FakeOpenAI", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        server, thread, self._server, self._thread = self._server, self._thread, None, None
        if server is not None:
            server.shutdown()
            server.server_close()
            server.drop_connections()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail_next(self, n: int, status: int = 500, message: str = "fake failure") -> None:
        with self._lock:
            self._fail_count, self._fail = n, (status, message)

    def fail_always(self, status: int = 500) -> None:
        with self._lock:
            self._fail_forever = (status, "fake failure (fail_always)")

    def recover(self) -> None:
        with self._lock:
            self._fail_count, self._fail_forever, self._malformed = 0, None, None

    def delay_next(self, n: int, seconds: float) -> None:
        """Answer the next n chats only after `seconds` (to make clients time out)."""
        with self._lock:
            self._delays = [seconds] * n

    def _take_delay(self) -> float:
        with self._lock:
            return self._delays.pop(0) if self._delays else 0.0

    def malformed(self, kind: str, count: int | None = None) -> None:
        """Answer the next `count` chats (None: all until recover()) with broken structured output.

        kind: "invalid_json" (cut-off JSON), "missing_fields" (every field but one dropped) or "wrong_enum"
        (enum-like and string fields get values outside their schema).
        """
        if kind not in MALFORMED_KINDS:
            raise ValueError(f"unknown malformed kind {kind!r}; one of {sorted(MALFORMED_KINDS)}")
        with self._lock:
            self._malformed = (kind, count)

    def _malform(self, text: str) -> str:
        """The answer text, broken as malformed() asked."""
        with self._lock:
            if self._malformed is None:
                return text
            kind, left = self._malformed
            if left is not None:
                self._malformed = (kind, left - 1) if left > 1 else None
        return MALFORMED_KINDS[kind](text)

    def _record(self, body: dict) -> tuple[int, str] | None:
        """Record a chat request; return (status, message) if it must fail."""
        with self._lock:
            self.requests.append(body)
            self.arrivals.append(time.monotonic())
            if self._fail_forever is not None:
                return self._fail_forever
            if self._fail_count > 0:
                self._fail_count -= 1
                return self._fail
        return None
