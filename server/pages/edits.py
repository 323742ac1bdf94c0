"""The persona page's list of how the user rewrote drafts (the examples the drafting prompts show), with delete."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request, Response

from agent.assistants import service as assistants
from agent.edits import service as edits
from server import csrf
from server.deps import PageUserDep, ServicesDep
from server.i18n import gettext as _
from server.pages.common import PageRoute, back, flash, partial

router = APIRouter(prefix="/assistants", route_class=PageRoute, include_in_schema=False)


@router.get("/{assistant_id}/edits")
async def listing(request: Request, assistant_id: UUID, svc: ServicesDep, uid: PageUserDep) -> Response:
    """The persona's kept rewrites, newest first (a fragment the persona page loads)."""
    async with svc.pool.connection() as conn:
        assistant = await assistants.get(conn, user_id=uid, assistant_id=assistant_id)
        items = await edits.list_for_assistant(conn, user_id=uid, assistant_id=assistant_id)
    return partial(request, "partials/assistant_edits.html", assistant=assistant, edits=items,
                   shown=edits.EXAMPLES)


@router.post("/{assistant_id}/edits/{edit_id}/delete")
async def delete(request: Request, assistant_id: UUID, edit_id: int, svc: ServicesDep, uid: PageUserDep) -> Response:
    """Forget one rewrite: it is no longer shown to the model."""
    await csrf.checked_form(request)
    async with svc.pool.connection() as conn:
        await edits.delete(conn, user_id=uid, assistant_id=assistant_id, edit_id=edit_id)
    flash(request, _("Example removed."))
    return back(f"/assistants/{assistant_id}")
