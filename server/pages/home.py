"""The dashboard's own pages: sign-in, the main page, the language switch."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from agent.assistants import service as assistants
from agent.llm import HOW_TO_CONFIGURE
from agent.sending import settings as sending
from agent.stats import service as stats
from server import charts, csrf, i18n
from server.deps import MaybeUserDep, PageUserDep, ServicesDep
from server.pages.common import PageRoute, back, render, templates

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/signin")
async def signin(request: Request, uid: MaybeUserDep) -> Response:
    """Sign in with Google; in local mode, or signed in already, there is nothing to sign in to."""
    if uid is not None:
        return back("/")
    return templates().TemplateResponse(request, "signin.html", {"lang": i18n.current(), "languages": i18n.LANGUAGES,
                                                                "csrf_token": csrf.token(request), "path": "/signin"})


@router.get("/")
async def home(request: Request, svc: ServicesDep, uid: PageUserDep, days: int = 7) -> Response:
    """What needs you now, and what happened in the last 7, 30 or 90 days, with the chart per day."""
    days = stats.chart_days(days)
    async with svc.pool.connection() as conn:
        attention = await stats.attention(conn, user_id=uid)
        summary = await stats.summary(conn, user_id=uid, days=days)
        has_assistants = bool(await assistants.list_for_user(conn, user_id=uid))
        outreach_paused = (await sending.get_row(conn, user_id=uid))["outreach_paused_reason"]
        activity = await charts.activity(conn, user_id=uid, days=days, path="/")
    return await render(request, "home.html", attention=attention, summary=summary, days=days, activity=activity,
                        has_assistants=has_assistants, model_help=HOW_TO_CONFIGURE, outreach_paused=outreach_paused)


@router.post("/language")
async def language(request: Request) -> Response:
    """Remember the chosen interface language in a cookie."""
    form = await csrf.checked_form(request)
    lang = str(form.get("lang", ""))
    target = str(form.get("next") or "/")
    if not target.startswith("/") or target.startswith("//"):
        target = "/"
    response = RedirectResponse(target, status_code=303)
    if lang in i18n.LANGUAGES:
        response.set_cookie(i18n.COOKIE, lang, max_age=365 * 24 * 3600, samesite="lax", httponly=True)
    return response
