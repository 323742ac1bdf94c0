"""Pub/Sub push for Gmail: authenticate the push, answer at once, let a job do the sync."""

from __future__ import annotations

import asyncio
import json
import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from runtime.google import pubsub
from runtime.google.tasks import notify
from server.deps import ServicesDep

log = logging.getLogger(__name__)
router = APIRouter(tags=["webhooks"])


@router.post("/webhooks/gmail", include_in_schema=False)
async def gmail_push(request: Request, svc: ServicesDep) -> JSONResponse:
    """A Gmail notification pushed by Pub/Sub with an OIDC token; 2xx acknowledges it."""
    try:
        await asyncio.to_thread(pubsub.verify_push_token, svc.settings, request.headers.get("authorization"))
    except pubsub.PushRejected as exc:
        log.warning("Gmail push rejected (%s): %s", exc.status, exc)
        headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'} if exc.status == 401 else None
        return JSONResponse({"detail": str(exc)}, status_code=exc.status, headers=headers)
    try:
        note = pubsub.parse_push_body(json.loads(await request.body()))
    except (ValueError, pubsub.MalformedNotification) as exc:  # acknowledged, or Pub/Sub redelivers it forever
        log.warning("malformed Gmail push acknowledged and dropped: %s", str(exc)[:200])
        return JSONResponse({"status": "malformed"}, status_code=200)
    outcome = await notify(svc, email=note.email, history_id=note.history_id, source="push")
    return JSONResponse({"status": outcome}, status_code=200)
