"""Per-request log context: the request id (X-Request-ID, or generated, echoed back), the user and the thread."""

from __future__ import annotations

import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent import logs

HEADER = b"x-request-id"
# An inbound id is kept only when it is short and plain (it ends up in every log line and header).
VALID_ID = re.compile(r"^[\w.:@/+=-]{1,128}$")
THREAD_PATH = re.compile(r"/threads/([0-9a-fA-F-]{36})(?:/|$)")


class RequestContext:
    """Bind request_id (and thread_id / user_id where the request names them) for the logs of this request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(HEADER, b"").decode("latin-1")
        request_id = given if VALID_ID.match(given) else uuid.uuid4().hex
        thread = THREAD_PATH.search(scope["path"])
        # The signed-in user is known once the request's dependencies resolved the session (server/deps.py puts it
        # on request.state, a dict that every copy of the scope shares); the access line is logged at the start of
        # the response, by then it is there.
        state = scope.setdefault("state", {})

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != HEADER]
                message = {**message, "headers": [*headers, (HEADER, request_id.encode("latin-1"))]}
            with logs.bound(user_id=state.get("user_id")):
                await send(message)

        with logs.bound(request_id=request_id, thread_id=thread.group(1) if thread else None):
            await self.app(scope, receive, send_with_id)
