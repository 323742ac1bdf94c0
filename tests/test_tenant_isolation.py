"""Tenant isolation, for every route of the app and every verb: user B with user A's real ids never sees or changes
A's data. The routes are read from the app itself, so a new route is covered (or the test names what it lacks)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi.params import File, Form
from fastapi.routing import APIRoute, iter_route_contexts

from agent.config import Settings
from server.actions import ACTIONS
from server.app import create_app
from tests.support import ALICE, CAROL, GoogleWorld, ServerProcess, query, start_outreach, thread_when

# Routes with no signed-in user behind them: they need no tenant check, and say why.
PUBLIC = {
    "/u/{token}": "one-click unsubscribe: the signed token is the authority (RFC 8058), not the session",
}
# Handled last: they end B's own session.
LAST = ("/api/mailbox/disconnect", "/logout")
REFUSED = {401, 403, 404, 405}
SECRET_NAME = "Alice's private persona"
SECRET_RECIPIENT = "bob.alice@example.org"
SECRET_SUPPRESSED = "only.alice@example.org"


def _routes(settings: Settings) -> list[tuple[str, str, Any]]:
    """(path, method, route) for every HTTP route of the app as the server builds it."""
    found = []
    for ctx in iter_route_contexts(create_app(settings).routes):
        for method in sorted(ctx.methods or ()):  # a mount (static files) has no methods
            if method != "HEAD":
                found.append((ctx.path, method, ctx.original_route))
    return sorted(found, key=lambda r: (r[0] in LAST, r[0], r[1]))


def _token(client: httpx.Client) -> str:
    page = client.get("/settings")
    return re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)


def _body(route: Any, samples: dict[str, Any]) -> dict[str, Any]:
    """A request body the route accepts (so that it is the tenant check, not validation, that answers)."""
    if not isinstance(route, APIRoute) or not route.dependant.body_params:
        return {}
    params = route.dependant.body_params
    if any(isinstance(p.field_info, (File, Form)) for p in params):
        return {"data": {p.name: samples[p.name] for p in params if not isinstance(p.field_info, File)},
                "files": {p.name: ("list.csv", b"email\nnew.carol@example.org\n", "text/csv")
                          for p in params if isinstance(p.field_info, File)}}
    model = params[0].field_info.annotation
    model = next((a for a in getattr(model, "__args__", (model,)) if hasattr(a, "model_fields")), None)
    if model is None:
        return {}
    missing = [n for n, f in model.model_fields.items() if f.is_required() and n not in samples]
    assert not missing, f"{route.path}: no sample value for required body fields {missing}; add them to samples"
    return {"json": {n: samples[n] for n, f in model.model_fields.items() if f.is_required()}}


def test_user_b_never_reaches_user_a_data(google: GoogleWorld, google_server: ServerProcess, database_url: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    server = google_server
    alice, carol = google.sign_in(server, ALICE), google.sign_in(server, CAROL)
    a_thread = start_outreach(alice, SECRET_RECIPIENT, name=SECRET_NAME)
    before = thread_when(alice, a_thread, lambda t: t["status"] == "waiting", what="alice's first email")
    a_persona = before["assistant_id"]
    assert alice.post("/api/suppressions", json={"email": SECRET_SUPPRESSED}).status_code == 201
    started = alice.post("/threads/import/start", data={"csrf_token": _token(alice), "assistant_id": a_persona,
                                                        "csv_text": "email\nzed.alice@example.org\n"})
    a_job = re.search(r'hx-get="/threads/import/([^"]+)"', started.text)
    assert started.status_code == 200 and a_job, started.text[:300]
    start_outreach(carol, "someone@example.net")  # B has data of their own too
    a_campaign = str(query(database_url, "SELECT id FROM campaigns")[0]["id"])  # the import is A's campaign

    ids = {"thread_id": a_thread, "assistant_id": a_persona, "email": SECRET_SUPPRESSED,
           "job_id": a_job.group(1), "edit_id": "1", "campaign_id": a_campaign}
    markers = [a_thread, a_persona, a_campaign, SECRET_NAME, SECRET_RECIPIENT, SECRET_SUPPRESSED,
               "zed.alice@example.org"]
    samples = {"assistant_id": a_persona, "recipient_email": "new.carol@example.org", "text": "Hello",
               "feedback": "Shorter", "recipients": [{"email": "new.carol@example.org"}], "email": "x@example.org",
               "name": "Carol's", "campaign_name": "Carol's list", "sender_name": "Carol", "offer": "An offer",
               "goal": "A goal", "reason": "test", "action": "stop"}
    token = _token(carol)
    form = {"csrf_token": token, "assistant_id": a_persona, "email": "x.carol@example.org", "text": "Hi",
            "feedback": "Shorter", "sandbox_text": "Hi", "csv_text": "email\nnew.carol@example.org\n", "lang": "en",
            **{k: v for k, v in samples.items() if isinstance(v, str) and k not in ("email", "assistant_id")}}

    tried, sent = 0, ""
    for name, value in server.env.items():  # the settings the server runs with, to build the same app
        monkeypatch.setenv(name, value)
    for path, method, route in _routes(Settings()):
        if path in PUBLIC:
            continue
        params = re.findall(r"{(\w+)(?::\w+)?}", path)
        unknown = [p for p in params if p not in ids and p != "action"]
        assert not unknown, f"{method} {path}: no id of user A for {unknown}; add one to `ids`"
        fillings = [dict(ids, action=a) for a in ACTIONS] if "action" in params else [ids]
        for values in fillings:
            url = path
            for name in params:
                url = url.replace("{" + name + "}", str(values[name]))
            is_api = path.startswith("/api/")
            page_form = {**form, "email": SECRET_SUPPRESSED} if path.endswith("/remove") else form  # A's, to lift
            kw = _body(route, samples) if is_api else ({"data": page_form} if method != "GET" else {})
            r = carol.request(method, url, **kw)
            tried += 1
            where = f"{method} {url}: {r.status_code} {r.text[:200]}"
            assert r.status_code < 500, where
            names_a_persona = is_api and "assistant_id" in str(kw.get("json", kw.get("data", "")))
            if params or names_a_persona:  # A's id in the path, or A's persona in an API body
                assert r.status_code in REFUSED, where
            sent += url + str(kw)
            text = r.text + str(r.headers)
            leaked = [m for m in markers if m in text and m not in sent]  # an echo of what B sent is no leak
            assert not leaked, f"{where}: shows user A's {leaked}"

    assert tried >= 60, tried
    after = alice.get(f"/api/threads/{a_thread}").json()
    assert (after["status"], len(after["messages"]), len(after["events"])) == (
        before["status"], len(before["messages"]), len(before["events"])), "A's thread is untouched"
    assert alice.get(f"/api/assistants/{a_persona}").json()["archived_at"] is None
    assert SECRET_SUPPRESSED in {s["email"] for s in alice.get("/api/suppressions").json()}
    assert [c["id"] for c in alice.get("/api/campaigns").json()] == [a_campaign], "A's campaign is untouched"
    assert alice.get(f"/api/campaigns/{a_campaign}").json()["status_counts"].get("paused") is None
    owners = query(database_url, "SELECT u.email, count(t.id) AS n FROM users u JOIN threads t ON t.user_id = u.id"
                                 " GROUP BY u.email ORDER BY 1")
    assert [(o["email"], o["n"]) for o in owners] == [(ALICE, 2), (CAROL, 1)], owners

