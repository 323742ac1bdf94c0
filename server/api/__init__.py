"""The JSON API, one module per resource."""

from __future__ import annotations

from fastapi import FastAPI

from server.api import assistants, campaigns, edits, health, mailbox, settings, suppressions, threads, unsubscribe, webhooks


def install(app: FastAPI) -> None:
    """Include every API router."""
    for module in (health, assistants, campaigns, edits, threads, settings, mailbox, webhooks, suppressions, unsubscribe):
        app.include_router(module.router)
