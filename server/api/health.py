"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from server.deps import ServicesDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(services: ServicesDep) -> JSONResponse:
    """The database answers and the model configuration is reported."""
    try:
        async with services.pool.connection(timeout=5) as conn:
            await conn.execute("SELECT 1")
    except Exception as exc:  # readiness reports the failure instead of raising
        return JSONResponse({"status": "unavailable", "database": str(exc)[:200]}, status_code=503)
    llm = "configured" if services.llm.configured else "not configured: set OPENAI_API_KEY or OPENAI_BASE_URL"
    return JSONResponse({"status": "ready", "database": "ok", "model": llm,
                         "mode": "local" if services.settings.local_mode else "google"})
