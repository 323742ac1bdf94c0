"""Bulk actions, exports and the sequence preview over HTTP, against a real server with the model fake."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, time

from agent.assistants.models import AssistantFields
from runtime.preview import send_times
from tests.support import ServerProcess, query
from tests.test_dashboard_forms import persona_form, token


def _threads(server: ServerProcess, n: int) -> tuple[str, list[str]]:
    persona = server.create_assistant()
    ids = [server.create_thread(persona["id"], f"person{i}@example.com", recipient_name=f"Person {i}")["id"]
           for i in range(n)]
    for tid in ids:
        server.wait_status(tid, "awaiting_approval")
    return persona["id"], ids


def _statuses(server: ServerProcess) -> dict[str, str]:
    return {str(r["id"]): r["status"] for r in query(server.env["DATABASE_URL"], "SELECT id, status FROM threads")}


def test_api_bulk_actions_report_each_thread(server: ServerProcess) -> None:
    _, ids = _threads(server, 3)
    assert server.post(f"/api/threads/{ids[2]}/stop").status_code == 202
    r = server.post("/api/threads/actions", json={"action": "pause", "ids": [*ids, ids[0]]})
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["done"], report["skipped"]) == (2, 1), "a repeated id is acted on once"
    by_id = {o["thread_id"]: o for o in report["outcomes"]}
    assert by_id[ids[2]] == {"thread_id": ids[2], "recipient_email": "person2@example.com", "outcome": "skipped",
                             "reason": "already closed"}
    assert {by_id[i]["outcome"] for i in ids[:2]} == {"done"}
    assert _statuses(server) == {ids[0]: "paused", ids[1]: "paused", ids[2]: "closed"}
    events = query(server.env["DATABASE_URL"], "SELECT count(*) AS n FROM events WHERE kind = 'paused'")
    assert events[0]["n"] == 2, "each pause went through the thread's own action (its event)"

    r = server.post("/api/threads/actions", json={"action": "resume", "filter": {"status": "paused"}})
    assert r.status_code == 200 and r.json()["done"] == 2, r.text
    for tid in ids[:2]:
        server.wait_status(tid, "awaiting_approval")
    r = server.post("/api/threads/actions", json={"action": "resume", "ids": ids[:1]})
    assert r.json()["outcomes"][0]["reason"] == "not paused"
    r = server.post("/api/threads/actions", json={"action": "takeover", "filter": {"q": "person1"}})
    assert r.json()["done"] == 1, r.text
    server.wait_status(ids[1], "needs_human")
    r = server.post("/api/threads/actions", json={"action": "takeover", "ids": [ids[1]]})
    assert r.json()["outcomes"][0]["reason"] == "already yours"


def test_api_bulk_actions_refuse_bad_and_oversized_requests(server: ServerProcess) -> None:
    persona, ids = _threads(server, 1)
    url = server.env["DATABASE_URL"]
    bad = [{"action": "pause"}, {"action": "pause", "ids": ids, "filter": {}}, {"action": "approve", "ids": ids},
           {"action": "pause", "ids": []}, {"action": "pause", "ids": ["nope"]},
           {"action": "pause", "filter": {"q": "a\x00b"}}, {"action": "pause", "filter": {"status": "gone"}},
           {"action": "pause", "ids": [ids[0]] * 10_001}, {"action": "pause", "filter": {"q": "nobody-matches"}}]
    for body in bad:
        r = server.post("/api/threads/actions", json=body)
        assert r.status_code == 422 and r.json()["detail"], (body, r.text)
    other = query(url, "INSERT INTO users (email) VALUES ('other@example.com') RETURNING id")[0]["id"]
    theirs = query(url, "INSERT INTO assistants (user_id, name, sender_name, offer, goal) VALUES (%s, 'X', 'X', 'o',"
                   " 'g') RETURNING id", (other,))[0]["id"]
    foreign = query(url, "INSERT INTO threads (user_id, assistant_id, recipient_email) VALUES (%s, %s, 'x@y.z')"
                    " RETURNING id", (other, theirs))[0]["id"]
    r = server.post("/api/threads/actions", json={"action": "stop", "ids": [str(foreign)]})
    assert r.json()["outcomes"][0]["reason"] == "not found", "another user's thread is not touched"
    assert query(url, "SELECT status FROM threads WHERE id = %s", (foreign,))[0]["status"] == "active"
    query(url, "INSERT INTO threads (user_id, assistant_id, recipient_email, status) SELECT user_id, assistant_id,"
               " 'bulk' || g || '@fill.test', 'paused' FROM threads, generate_series(1, 10000) g WHERE id = %s",
          (ids[0],))
    r = server.post("/api/threads/actions", json={"action": "resume", "filter": {}})
    assert r.status_code == 422 and "at most 10,000" in r.json()["detail"]
    assert not query(url, "SELECT 1 FROM events WHERE kind = 'resumed'"), "nothing was done"


def test_export_csv_and_history_json(server: ServerProcess) -> None:
    _, ids = _threads(server, 2)
    assert server.post(f"/api/threads/{ids[0]}/stop").status_code == 202
    r = server.client.get("/api/threads/export.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"].startswith('attachment; filename="threads-')
    rows = list(csv.DictReader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert {row["recipient_email"]: row["status"] for row in rows} == {"person0@example.com": "closed",
                                                                      "person1@example.com": "awaiting_approval"}
    assert {row["persona"] for row in rows} == {"Beta invites"}
    r = server.client.get("/api/threads/export.csv", params={"status": "closed"})
    assert [row["close_reason"] for row in csv.DictReader(io.StringIO(r.text.lstrip("\ufeff")))] == ["stopped"]
    for params in ({"q": "a\x00b"}, {"status": "nope"}, {"assistant_id": "x"}, {"q": "x" * 201}):
        assert server.client.get("/api/threads/export.csv", params=params).status_code == 422, params
    r = server.client.get(f"/api/threads/{ids[0]}/history.json")
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    data = r.json()
    assert data["thread"]["id"] == ids[0] and data["thread"]["close_reason"] == "stopped"
    assert {e["kind"] for e in data["events"]} >= {"created", "closed"} and data["persona"]["name"] == "Beta invites"
    assert server.client.get("/api/threads/00000000-0000-0000-0000-000000000000/history.json").status_code == 404
    page = server.client.get(f"/threads/{ids[0]}").text
    assert f'href="/api/threads/{ids[0]}/history.json"' in page
    listing = server.client.get("/threads", params={"status": "closed", "q": "person"}).text
    assert 'href="/api/threads/export.csv?status=closed&amp;q=person"' in listing


def test_bulk_forms_work_without_javascript(server: ServerProcess) -> None:
    c = server.client
    _, ids = _threads(server, 3)
    listing = c.get("/threads").text
    assert "Everything the filter matches (3)" in listing and listing.count('name="id"') == 3
    csrf_token = token(c, "/threads")
    assert c.post("/threads/bulk", data={"action": "pause", "id": ids[:2]}).status_code == 403
    r = c.post("/threads/bulk", data={"csrf_token": csrf_token, "action": "pause", "id": ids[:2]})
    assert r.status_code == 200 and "Pause 2 threads?" in r.text and "Person 1" in r.text
    assert set(_statuses(server).values()) == {"awaiting_approval"}, "the confirmation changes nothing"
    r = c.post("/threads/bulk/run", data={"csrf_token": csrf_token, "action": "pause", "id": ids[:2]})
    assert r.status_code == 200 and "Done: 2. Skipped: 0." in r.text
    assert sorted(_statuses(server).values()) == ["awaiting_approval", "paused", "paused"]

    # Everything the filter matches: the count is named, and the same threads are acted on.
    r = c.post("/threads/bulk", data={"csrf_token": csrf_token, "action": "stop", "scope": "all", "q": "person"})
    assert "Stop 3 threads for good?" in r.text
    cutoff = re.search(r'name="created_before" value="([^"]+)"', r.text).group(1)
    form = {"csrf_token": csrf_token, "action": "stop", "scope": "all", "q": "person", "created_before": cutoff}
    r = c.post("/threads/bulk/run", data=form)
    assert "Done: 3. Skipped: 0." in r.text and set(_statuses(server).values()) == {"closed"}
    r = c.post("/threads/bulk/run", data=form)
    assert "Done: 0. Skipped: 3." in r.text and r.text.count("already closed") == 3

    # Nothing chosen, an unknown action, a forged id: back to the list with why.
    for data in ({"action": "pause"}, {"action": "delete", "id": ids[:1]}, {"action": "pause", "id": ["nope"]},
                 {"action": "stop", "scope": "all", "created_before": "yesterday"}):
        for path in ("/threads/bulk", "/threads/bulk/run"):
            r = c.post(path, data={"csrf_token": csrf_token, **data}, follow_redirects=False)
            if path == "/threads/bulk" and "created_before" in data:
                continue  # the confirmation sets its own cutoff; only the run reads one
            assert r.status_code == 303 and r.headers["location"].startswith("/threads"), (path, data)
            assert 'class="flash flash-bad"' in c.get(r.headers["location"]).text


def test_send_times_follow_the_window_and_the_follow_up_days() -> None:
    persona = AssistantFields(name="P", sender_name="A", offer="o", goal="g", follow_up_count=3, follow_up_days=3,
                              send_days=[1, 2, 3, 4, 5], send_start=time(9), send_end=time(17),
                              timezone="Europe/Paris")
    friday_evening = datetime(2026, 12, 4, 18, 30, tzinfo=UTC)  # 19:30 in Paris, after the window
    times = send_times(persona, now=friday_evening)
    assert [t.strftime("%a %d %H:%M") for t in times] == ["Mon 07 09:00", "Thu 10 09:00", "Mon 14 09:00",
                                                          "Thu 17 09:00"]
    assert str(times[0].tzinfo) == "Europe/Paris"
    inside = send_times(persona.model_copy(update={"follow_up_count": 0}), now=datetime(2026, 12, 8, 10, tzinfo=UTC))
    assert [t.isoformat() for t in inside] == ["2026-12-08T11:00:00+01:00"], "inside the window it goes at once"


def test_sequence_preview_over_http(server: ServerProcess, model) -> None:
    _, script = model
    c = server.client
    csrf_token = token(c, "/assistants/new")
    form = persona_form(csrf_token=csrf_token, follow_up_count="2", follow_up_days="4", sample_name="Mia")
    r = c.post("/assistants/preview/sequence", data=form, headers={"HX-Request": "true"})
    assert r.status_code == 200 and 'data-follow-ups="2"' in r.text, r.text
    assert r.text.count('class="email-preview sequence-step"') == 3
    assert "Just following up (1)" in r.text and "Just following up (2)" in r.text and "An idea for you" in r.text
    days = [int(d) for d in re.findall(r'data-day="(\d+)"', r.text)]
    assert days[0] == 1 and days[1] >= 5 and days[2] >= days[1] + 4, days
    assert "(UTC)" in r.text
    assert "Mia" in script.calls[-1]["user"], "the follow-ups are written for the sample recipient"
    assert query(server.env["DATABASE_URL"], "SELECT count(*) AS n FROM threads")[0]["n"] == 0, "nothing stored"
    full = c.post("/assistants/preview/sequence", data=form)
    assert full.status_code == 200 and 'id="sequence-steps"' in full.text and 'id="assistant-form"' in full.text
    assert 'value="Mia"' in full.text, "without JavaScript the form comes back as typed, with the sequence"
    bad = c.post("/assistants/preview/sequence", data={**form, "follow_up_days": "0"}, headers={"HX-Request": "true"})
    assert bad.status_code == 200 and "Days between follow-ups" in bad.text
