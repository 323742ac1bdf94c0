"""CSRF protection for the dashboard: a per-session token in every form and in htmx's X-CSRF-Token header."""

from __future__ import annotations

import hmac
import secrets

from starlette.datastructures import FormData
from starlette.requests import Request

from agent.errors import AppError
from server.i18n import gettext as _

SESSION_KEY = "csrf"
FIELD = "csrf_token"
HEADER = "x-csrf-token"
MAX_FORM_BYTES = 6 * 1024 * 1024  # a 5 MB CSV travels as a form field between preview and start


class CsrfFailed(AppError):
    """The form did not carry this session's token."""

    status_code = 403


def token(request: Request) -> str:
    """This session's token, created on first use."""
    value = request.session.get(SESSION_KEY)
    if not value:
        value = request.session[SESSION_KEY] = secrets.token_urlsafe(32)
    return value


async def checked_form(request: Request) -> FormData:
    """The posted form, after checking the token from the form field or the header."""
    form = await request.form(max_part_size=MAX_FORM_BYTES)
    sent = request.headers.get(HEADER) or form.get(FIELD)
    expected = request.session.get(SESSION_KEY)
    if not expected or not isinstance(sent, str) or not hmac.compare_digest(sent, expected):
        raise CsrfFailed(_("This form has expired or did not come from this site. Reload the page and try again."))
    return form
