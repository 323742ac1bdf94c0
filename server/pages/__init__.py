"""The dashboard: server-rendered pages (Jinja2 + htmx) on the same dependencies as the API."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from server.pages import assistants, bulk, campaigns, edits, home, imports, settings, threads

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


def install(app: FastAPI) -> None:
    """Serve the dashboard pages and their static files."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for module in (assistants, campaigns, edits, imports, bulk, threads, settings, home):  # imports, bulk first
        app.include_router(module.router)
