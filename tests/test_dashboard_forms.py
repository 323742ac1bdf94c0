"""Dashboard forms over HTTP: CSRF, server-side validation next to each field, filters, paging, settings, language."""

from __future__ import annotations

import re

import httpx

from agent.assistants.models import AssistantFields
from tests.support import PERSONA, ServerProcess, query, wait_until

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def token(client: httpx.Client, path: str = "/") -> str:
    """The session's CSRF token, as a page carries it."""
    return TOKEN.search(client.get(path).text).group(1)


def error_for(html: str, field: str) -> str:
    """The error text shown next to a field."""
    found = re.search(rf'<p class="error" id="e-{field}">([^<]*)</p>', html)
    return found.group(1) if found else ""


def persona_form(**changes: object) -> dict[str, object]:
    """A complete persona form as a browser posts it."""
    form: dict[str, object] = {**PERSONA, "tone": "friendly", "language": "match", "autonomy": "approve_first",
                               "follow_up_count": "2", "follow_up_days": "3", "max_replies": "5",
                               "send_days": ["1", "2", "3", "4", "5"], "send_start": "09:00", "send_end": "17:00",
                               "timezone": "UTC"}
    form.update(changes)
    return form


def test_every_persona_help_text_is_in_the_catalog() -> None:
    from babel.messages.pofile import read_po

    from server.i18n import LOCALE_DIR

    with (LOCALE_DIR / "messages.pot").open("rb") as f:
        ids = {m.id for m in read_po(f) if isinstance(m.id, str)}
    missing = {f.description for f in AssistantFields.model_fields.values()} - ids
    assert not missing, "a persona field's description changed: run the catalog commands (README, Dashboard)"


def test_forms_need_the_session_csrf_token(server: ServerProcess) -> None:
    c = server.client
    assert c.post("/assistants/new", data=persona_form()).status_code == 403
    r = c.post("/assistants/new", data=persona_form(csrf_token="forged"))
    assert r.status_code == 403 and "did not come from this site" in r.text
    assert query(server.env["DATABASE_URL"], "SELECT count(*) AS n FROM assistants")[0]["n"] == 0
    r = c.post("/assistants/new", data=persona_form(csrf_token=token(c)))
    assert r.status_code == 303 and r.headers["location"].startswith("/threads/new?assistant=")
    # htmx sends the token as a header
    r = c.post("/assistants/preview/draft", data=persona_form(), headers={"X-CSRF-Token": token(c), "HX-Request": "true"})
    assert r.status_code == 200 and 'id="preview-email"' in r.text


def test_persona_errors_show_next_to_their_fields(server: ServerProcess) -> None:
    c = server.client
    form = persona_form(csrf_token=token(c), name=" ", follow_up_count="many", follow_up_days="0",
                        send_start="18:00", send_end="09:00", send_days=[], timezone="Mars/Olympus")
    r = c.post("/assistants/new", data=form)
    assert r.status_code == 422
    assert error_for(r.text, "name") == "This field is required."
    assert error_for(r.text, "follow_up_count") == "Enter a whole number."
    assert error_for(r.text, "follow_up_days") == "Enter a number in the allowed range."
    assert error_for(r.text, "send_days") == "Choose at least one day."
    assert error_for(r.text, "timezone")
    assert 'value="Anna from Acme"' in r.text, "what was typed is kept"
    form.update(name="Pilots", follow_up_count="1", follow_up_days="2", send_days=["1"], timezone="Europe/Paris")
    r = c.post("/assistants/new", data=form)
    assert r.status_code == 422 and error_for(r.text, "send_end") == "The window must end after it starts."
    r = c.post("/assistants/new", data={**form, "send_start": "08:30"})
    assert r.status_code == 303
    stored = query(server.env["DATABASE_URL"], "SELECT name, follow_up_count, send_days, timezone FROM assistants")
    assert stored == [{"name": "Pilots", "follow_up_count": 1, "send_days": [1], "timezone": "Europe/Paris"}]


def test_edit_and_archive_a_persona(server: ServerProcess) -> None:
    c = server.client
    persona = server.create_assistant()
    page = c.get(f"/assistants/{persona['id']}")
    assert 'value="09:00"' in page.text and "Beta invites" in page.text
    r = c.post(f"/assistants/{persona['id']}", data=persona_form(csrf_token=token(c), name="Renamed", tone="warm"))
    assert r.status_code == 303
    assert server.client.get(f"/api/assistants/{persona['id']}").json()["tone"] == "warm"
    r = c.post(f"/assistants/{persona['id']}/archive", data={"csrf_token": token(c)})
    assert r.status_code == 303
    listing = c.get("/assistants").text
    assert "“Renamed” archived" in listing and 'id="assistant-list">\n</div>' in listing
    assert "Show 1 archived assistant" in listing
    assert "Renamed" in c.get("/assistants?archived=true").text


def test_starting_a_thread_validates_and_reports_refusals(server: ServerProcess) -> None:
    c = server.client
    persona = server.create_assistant()
    form = {"csrf_token": token(c), "assistant_id": persona["id"], "recipient_email": "not an email"}
    r = c.post("/threads/new", data=form)
    assert r.status_code == 422 and error_for(r.text, "recipient_email").startswith("Enter a valid email address")
    r = c.post("/settings/suppressions", data={"csrf_token": token(c), "email": "gone@example.com", "reason": "asked"})
    assert r.status_code == 303
    r = c.post("/threads/new", data={**form, "recipient_email": "gone@example.com"})
    assert r.status_code == 409 and "suppression list" in error_for(r.text, "recipient_email")
    r = c.post("/threads/new", data={**form, "recipient_email": "ok@example.com", "context": "Met at a fair."})
    assert r.status_code == 303 and r.headers["location"].startswith("/threads/")
    r = c.post("/threads/new", data={**form, "recipient_email": "OK@example.com"})
    assert r.status_code == 409 and "already in an open thread" in error_for(r.text, "recipient_email")


def test_thread_list_filters_searches_and_pages(server: ServerProcess) -> None:
    db = server.env["DATABASE_URL"]
    persona = server.create_assistant()
    user = query(db, "SELECT id FROM users")[0]["id"]
    query(db, "INSERT INTO threads (user_id, assistant_id, recipient_email, recipient_name, status, created_at)"
              " SELECT %s, %s, 'person' || i || '@example.com', 'Person ' || i,"
              " CASE WHEN i %% 10 = 0 THEN 'needs_human' ELSE 'waiting' END, now() - i * interval '1 minute'"
              " FROM generate_series(1, 120) AS i", (user, persona["id"]))
    c = server.client
    first = c.get("/threads")
    rows = re.findall(r'href="/threads/([0-9a-f-]{36})"', first.text)
    assert len(rows) == 50 and "person1@example.com" in first.text
    nxt = re.search(r'rel="next" href="([^"]+)"', first.text).group(1).replace("&amp;", "&")
    second = c.get(nxt)
    second_rows = re.findall(r'href="/threads/([0-9a-f-]{36})"', second.text)
    assert len(second_rows) == 50 and not set(rows) & set(second_rows)
    assert "person51@example.com" in second.text
    human = c.get("/threads?status=needs_human")
    assert len(re.findall(r'data-status="needs_human"', human.text)) == 12
    assert 'data-filter="needs_human"' in human.text and ">Needs you <span class=\"count\">12</span>" in human.text
    found = c.get("/threads", params={"q": "person7@"})
    assert re.findall(r"person\d+@example.com", found.text) == ["person7@example.com"]
    assert "No threads match." in c.get("/threads", params={"q": "nobody"}).text
    assert c.get("/threads", params={"cursor": "garbage"}).status_code == 422


def test_suppression_list_add_import_remove(server: ServerProcess) -> None:
    c = server.client
    r = c.post("/settings/suppressions", data={"csrf_token": token(c), "email": "nope"})
    assert r.status_code == 422 and error_for(r.text, "email").startswith("Enter a valid email address")
    r = c.post("/settings/suppressions/import", data={"csrf_token": token(c),
                                                      "addresses": "a@example.com, B@example.com\nbroken@\nc@example.com"},
               files={"file": ("list.csv", b"email\nd@example.com\n")})
    assert r.status_code == 303
    page = c.get("/settings")
    assert "4 addresses suppressed; 1 entries were not valid addresses." in page.text
    for email in ("a@example.com", "b@example.com", "c@example.com", "d@example.com"):
        assert email in page.text
    r = c.post("/settings/suppressions/remove", data={"csrf_token": token(c), "email": "b@example.com"})
    assert r.status_code == 303
    emails = {r["email"] for r in query(server.env["DATABASE_URL"], "SELECT email FROM suppressions")}
    assert emails == {"a@example.com", "c@example.com", "d@example.com"}
    assert "0 emails sent in the last 24 hours." in page.text, "the sending section states the mailbox's real count"


def test_language_follows_the_browser_and_the_switch(server: ServerProcess) -> None:
    c = server.client
    assert "<h1>Настройки</h1>" in c.get("/settings", headers={"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.8"}).text
    assert "<h1>Settings</h1>" in c.get("/settings", headers={"Accept-Language": "de-DE,en;q=0.5"}).text
    r = c.post("/language", data={"csrf_token": token(c), "lang": "ru", "next": "/threads"})
    assert r.status_code == 303 and r.headers["location"] == "/threads"
    assert "<h1>Переписки</h1>" in c.get("/threads").text
    r = c.post("/language", data={"csrf_token": token(c), "lang": "en", "next": "//evil.example"})
    assert r.headers["location"] == "/", "only local redirects"
    assert "<h1>Threads</h1>" in c.get("/threads").text


def test_without_a_model_the_preview_and_main_page_say_so(server: ServerProcess) -> None:
    server.restart(OPENAI_API_KEY="", OPENAI_BASE_URL="")
    c = server.client
    home = c.get("/")
    assert 'id="model-missing"' in home.text and "OPENAI_API_KEY" in home.text
    r = c.post("/assistants/preview/draft", data=persona_form(csrf_token=token(c)))
    assert r.status_code == 200 and 'id="preview-unavailable"' in r.text and "No language model is configured" in r.text


def test_main_page_lists_what_needs_you(server: ServerProcess) -> None:
    persona = server.create_assistant()
    tid = server.create_thread(persona["id"], "bob@example.com")["id"]
    server.wait_status(tid, "awaiting_approval")
    home = server.client.get("/")
    assert re.search(r'id="needs-approval">\s*<span class="stat">1</span>', home.text)
    assert f'href="/threads/{tid}"' in home.text
    live = server.client.get(f"/threads/{tid}/live")
    version = re.search(r'data-version="([0-9a-f]+)"', live.text).group(1)
    assert server.client.get(f"/threads/{tid}/live", params={"v": version}).status_code == 204, "unchanged: no swap"
    wait_until(lambda: server.client.get(f"/threads/{tid}").status_code == 200, what="thread page")


def test_russian_catalog_is_complete_and_compiled() -> None:
    from babel.messages.pofile import read_po
    from babel.support import Translations

    from server.i18n import LOCALE_DIR

    with (LOCALE_DIR / "ru" / "LC_MESSAGES" / "messages.po").open("rb") as f:
        po = read_po(f, locale="ru")
    with (LOCALE_DIR / "messages.pot").open("rb") as f:
        pot = read_po(f)
    assert {m.id if isinstance(m.id, str) else m.id[0] for m in pot if m.id} == \
        {m.id if isinstance(m.id, str) else m.id[0] for m in po if m.id}, "run pybabel update (README, Dashboard)"
    untranslated = [m.id for m in po if m.id and not all(m.string if isinstance(m.string, tuple) else [m.string])]
    assert untranslated == []
    mo = Translations.load(str(LOCALE_DIR), ["ru"])
    stale = [m.id for m in po if isinstance(m.id, str) and m.id and mo.gettext(m.id) != m.string]
    assert stale == [], "run pybabel compile (README, Dashboard)"


def test_thread_actions_from_the_page(server: ServerProcess) -> None:
    c = server.client
    persona = server.create_assistant()
    tid = server.create_thread(persona["id"], "dana@example.com")["id"]
    server.wait_status(tid, "awaiting_approval")
    page = c.get(f"/threads/{tid}").text
    wait_id = re.search(r'name="wait_id" value="([^"]+)"', page).group(1)
    r = c.post(f"/threads/{tid}/regenerate", data={"csrf_token": token(c), "wait_id": wait_id, "feedback": " "})
    assert r.status_code == 422 and error_for(r.text, "feedback") == "This field is required."
    hx = {"HX-Request": "true", "X-CSRF-Token": token(c)}
    r = c.post(f"/threads/{tid}/regenerate", data={"wait_id": wait_id, "feedback": ""}, headers=hx)
    assert r.status_code == 200 and r.text.lstrip().startswith('<div id="live"'), "htmx gets the live region back"
    assert error_for(r.text, "feedback") == "This field is required."
    r = c.post(f"/threads/{tid}/regenerate", data={"wait_id": wait_id, "feedback": "shorter"}, headers=hx)
    assert r.status_code == 200 and 'id="notice">The assistant is writing a new draft.' in r.text
    t = wait_until(lambda: (t := server.thread(tid))["pending_draft"] and "revised: shorter" in t["pending_draft"]["text"]
                   and t, what="the regenerated draft")
    assert "(revised: shorter)" in c.get(f"/threads/{tid}").text
    r = c.post(f"/threads/{tid}/approve", data={"csrf_token": token(c), "wait_id": t["pending_draft"]["wait_id"],
                                                 "subject": "", "text": "Hello"})
    assert r.status_code == 422 and error_for(r.text, "subject") == "This field is required."
    assert c.post(f"/threads/{tid}/pause", data={"csrf_token": token(c)}).status_code == 303
    assert server.thread(tid)["status"] == "paused"
    assert "Paused. Nothing is sent until you resume." in c.get(f"/threads/{tid}").text
    assert c.post(f"/threads/{tid}/resume", data={"csrf_token": token(c)}).status_code == 303
    server.wait_status(tid, "awaiting_approval")
    r = c.post(f"/threads/{tid}/reject", data={"csrf_token": token(c)})
    assert r.status_code == 303
    server.wait_status(tid, "needs_human")
    assert c.post(f"/threads/{tid}/stop", data={"csrf_token": token(c)}).status_code == 303
    assert server.thread(tid)["status"] == "closed" and server.thread(tid)["messages"] == []
    c.post(f"/threads/{tid}/pause", data={"csrf_token": token(c)})
    assert "Cannot pause: the thread is closed." in c.get(f"/threads/{tid}").text
    assert c.post(f"/threads/{tid}/explode", data={"csrf_token": token(c)}).status_code == 303
    assert "Unknown action." in c.get(f"/threads/{tid}").text


def test_sending_limits_are_validated_and_saved(server: ServerProcess) -> None:
    c = server.client
    base = {"daily_cap": "40", "per_thread_daily_max": "3", "spacing_min_seconds": "30", "spacing_max_seconds": "90",
            "bounce_threshold": "5", "bounce_window": "50", "timezone": "UTC", "digest_interval_hours": "24"}
    r = c.post("/settings/sending", data={**base, "csrf_token": token(c), "daily_cap": "5000", "timezone": "Nowhere"})
    assert r.status_code == 422
    assert error_for(r.text, "daily_cap") == "Enter a number in the allowed range." and error_for(r.text, "timezone")
    r = c.post("/settings/sending", data={**base, "csrf_token": token(c), "spacing_min_seconds": "300"})
    assert r.status_code == 422 and error_for(r.text, "spacing_max_seconds")
    r = c.post("/settings/sending", data={**base, "csrf_token": token(c), "bounce_threshold": "10",
                                          "timezone": "Europe/Berlin", "digest_enabled": "1"})
    assert r.status_code == 303
    saved = c.get("/api/settings/sending").json()
    assert (saved["daily_cap"], saved["spacing_min_seconds"], saved["bounce_threshold"], saved["timezone"],
            saved["digest_enabled"]) == (40, 30, 0.1, "Europe/Berlin", True)
    assert "Sending limits saved." in c.get("/settings").text


def test_suppressing_an_address_closes_its_open_thread(server: ServerProcess) -> None:
    c = server.client
    persona = server.create_assistant()
    tid = server.create_thread(persona["id"], "eve@example.com")["id"]
    server.wait_status(tid, "awaiting_approval")
    r = c.post("/settings/suppressions", data={"csrf_token": token(c), "email": "Eve@Example.com", "reason": "asked"})
    assert r.status_code == 303
    assert "eve@example.com is suppressed: nothing will be sent to it. Open threads closed: 1." in c.get("/settings").text
    t = server.thread(tid)
    assert (t["status"], t["close_reason"]) == ("closed", "suppressed")
    r = c.post("/settings/suppressions/import", data={"csrf_token": token(c)},
               files={"file": ("list.csv", b"name\nno email column\n")})
    assert r.status_code == 422 and "email column" in error_for(r.text, "file")


def test_disconnected_mailbox_and_paused_outreach_need_you(google, google_server: ServerProcess) -> None:  # noqa: ANN001
    from tests.support import ALICE

    client = google.sign_in(google_server, ALICE)
    home = client.get("/")
    assert "alice@example.com" in home.text and ">Connected<" in home.text
    db = google_server.env["DATABASE_URL"]
    query(db, "UPDATE mailboxes SET status = 'disconnected', disconnect_reason = 'Access was removed in Google.'")
    query(db, "UPDATE sending_settings SET outreach_paused_reason = 'Too many bounces (6 of the last 50).'")
    home = client.get("/")
    assert ">Disconnected<" in home.text and "Gmail is disconnected" in home.text
    assert 'href="/login">Reconnect Gmail</a>' in home.text
    assert 'id="outreach-paused"' in home.text and "Too many bounces (6 of the last 50)." in home.text
    settings = client.get("/settings").text
    assert "Access was removed in Google." in settings and "Resume new outreach" in settings
