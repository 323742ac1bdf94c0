"""Bad input: each gets a 4xx with a clear JSON message, and nothing is half-written."""

from __future__ import annotations

import re
import uuid

import pytest

from agent.mail.mime import parse_message
from tests.support import PERSONA, ServerProcess, query

COUNT_SQL = "SELECT (SELECT count(*) FROM assistants) AS a, (SELECT count(*) FROM threads) AS t," \
            " (SELECT count(*) FROM procrastinate_jobs WHERE task_name IN ('ea:run_thread', 'ea:resume_thread')) AS j"


@pytest.fixture
def persona(server: ServerProcess) -> dict:
    return server.create_assistant(autonomy="approve_all")


def _bad(server: ServerProcess, method: str, path: str, status: int, needle: str, **kw) -> None:
    r = server.client.request(method, path, **kw)
    assert r.status_code == status, (path, r.status_code, r.text)
    detail = r.json()["detail"]
    assert isinstance(detail, str) and needle.lower() in detail.lower(), (path, detail)


def test_bad_inputs_answer_4xx_and_write_nothing(server: ServerProcess, persona: dict, database_url: str) -> None:
    aid = persona["id"]
    before = query(database_url, COUNT_SQL)[0]
    cases = [
        ("POST", "/api/assistants", 422, "name", {"json": {**PERSONA, "name": ""}}),
        ("POST", "/api/assistants", 422, "autonomy", {"json": {**PERSONA, "autonomy": "yolo"}}),
        ("POST", "/api/assistants", 422, "follow_up_days", {"json": {**PERSONA, "follow_up_days": 0}}),
        ("POST", "/api/assistants", 422, "offer", {"json": {**PERSONA, "offer": "x" * 5001}}),
        ("POST", "/api/assistants", 422, "extra", {"json": {**PERSONA, "recipient": "x@y.z"}}),
        ("POST", "/api/assistants", 422, "json", {"content": b"{not json", "headers": {"content-type": "application/json"}}),
        ("PATCH", f"/api/assistants/{aid}", 422, "max_replies", {"json": {"max_replies": 99}}),
        ("GET", f"/api/assistants/{uuid.uuid4()}", 404, "not found", {}),
        ("GET", "/api/assistants/not-a-uuid", 422, "assistant_id", {}),
        ("POST", "/api/threads", 422, "recipient_email", {"json": {"assistant_id": aid, "recipient_email": "nope"}}),
        ("POST", "/api/threads", 422, "recipient_email", {"json": {"assistant_id": aid, "recipient_email": "a@b.c" * 60}}),
        ("POST", "/api/threads", 404, "assistant not found",
         {"json": {"assistant_id": str(uuid.uuid4()), "recipient_email": "ok@example.com"}}),
        ("POST", "/api/threads", 422, "recipient_name",
         {"json": {"assistant_id": aid, "recipient_email": "ok@example.com", "recipient_name": "n" * 201}}),
        ("GET", "/api/threads?status=sleeping", 422, "status", {}),
        ("GET", "/api/threads?limit=0", 422, "limit", {}),
        ("GET", "/api/threads?cursor=garbage", 422, "cursor", {}),
        ("GET", f"/api/threads/{uuid.uuid4()}", 404, "thread not found", {}),
        ("POST", f"/api/threads/{uuid.uuid4()}/pause", 404, "thread not found", {}),
        ("POST", "/api/threads/bulk", 422, "nothing was created",
         {"json": {"assistant_id": aid, "recipients": [{"email": "good@example.com"}, {"email": "bad"}]}}),
        ("POST", "/api/threads/bulk", 422, "recipients", {"json": {"assistant_id": aid, "recipients": []}}),
        ("POST", "/api/threads/bulk/csv", 422, "email column",
         {"data": {"assistant_id": aid}, "files": {"file": ("l.csv", b"name,company\nBob,Acme\n", "text/csv")}}),
        ("POST", "/api/threads/bulk/csv", 422, "email column",  # a bare CR inside the header
         {"data": {"assistant_id": aid}, "files": {"file": ("l.csv", b"em\rail,name\nbo@example.com,Bo\n", "text/csv")}}),
        ("POST", "/api/threads/bulk/csv", 422, "longer than 1,000,000 characters",
         {"data": {"assistant_id": aid}, "files": {"file": ("l.csv", b'email,note\nbo@example.com,"' + b"x" * 1_000_001,
                                                            "text/csv")}}),
        ("POST", "/api/suppressions/import", 422, "cannot be read as an Excel workbook",
         {"files": {"file": ("l.xlsx", b"PK\x03\x04 not a workbook", "application/octet-stream")}}),
    ]
    for method, path, status, needle, kw in cases:
        _bad(server, method, path, status, needle, **kw)
    assert query(database_url, COUNT_SQL)[0] == before, "a failed request left rows or jobs behind"


def test_csv_uploads_with_nul_bytes_and_fields_over_128_kb_are_read(server: ServerProcess, persona: dict) -> None:
    note = "n" * 200_000  # over the csv module's default limit of 131,072 characters
    data = f"email,name,note\nbo@example.com,B\x00o,{note}\n".encode()
    r = server.post("/api/threads/bulk/csv", data={"assistant_id": persona["id"]},
                    files={"file": ("l.csv", data, "text/csv")})
    assert r.status_code == 201, r.text
    thread = server.thread(r.json()["created"][0])
    assert thread["recipient_name"] == "Bo" and set(thread["context"]) == {"n"}
    r = server.post("/api/suppressions/import", files={"file": ("s.csv", b"email\x00\nev\x00e@example.com\n", "text/csv")})
    assert r.status_code == 200 and r.json()["added"] == 1, r.text


def test_an_inbound_reply_with_nul_bytes_is_read_not_skipped() -> None:
    raw = (b'From: "B\x00o" <bo@example.com>\r\nTo: me@example.com\r\nSubject: Re\x00: hi\r\n'
           b"Message-ID: <r1\x00@example.com>\r\nList-Id: m\x00\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
           b"Sounds\x00 good, send\x07 it.\r\n")
    msg = parse_message(raw, provider_message_id="p1", provider_thread_id=None)
    assert (msg.text, msg.subject, msg.from_name, msg.message_id) == (
        "Sounds good, send it.", "Re: hi", "Bo", "<r1@example.com>")
    assert msg.headers["List-Id"] == "m", msg.headers


def test_actions_in_the_wrong_state_are_refused(server: ServerProcess, persona: dict) -> None:
    tid = server.create_thread(persona["id"], "mo@example.com")["id"]
    server.wait_status(tid, "awaiting_approval")
    _bad(server, "POST", f"/api/threads/{tid}/handback", 409, "cannot hand back")
    _bad(server, "POST", f"/api/threads/{tid}/resume", 409, "cannot resume")
    _bad(server, "POST", f"/api/threads/{tid}/reply", 409, "take over first", json={"text": "hi"})
    _bad(server, "POST", f"/api/threads/{tid}/sandbox-reply", 409, "nothing has been sent", json={"text": "hi"})
    _bad(server, "POST", f"/api/threads/{tid}/regenerate", 422, "feedback", json={"feedback": ""})
    _bad(server, "POST", f"/api/threads/{tid}/approve", 422, "text", json={"text": ""})
    # A second open thread to the same address is refused; case does not matter.
    _bad(server, "POST", "/api/threads", 409, "already in an open thread",
         json={"assistant_id": persona["id"], "recipient_email": "MO@example.com"})
    assert server.post(f"/api/threads/{tid}/stop").status_code == 202
    _bad(server, "POST", f"/api/threads/{tid}/approve", 409, "closed", json={})
    _bad(server, "POST", f"/api/threads/{tid}/stop", 409, "closed")


def test_archived_persona_starts_no_thread(server: ServerProcess, persona: dict, database_url: str) -> None:
    assert server.client.delete(f"/api/assistants/{persona['id']}").json()["archived_at"]
    _bad(server, "POST", "/api/threads", 422, "archived",
         json={"assistant_id": persona["id"], "recipient_email": "new@example.com"})
    assert query(database_url, "SELECT count(*) AS n FROM threads")[0]["n"] == 0


def test_bulk_skips_duplicates_and_suppressed(server: ServerProcess, persona: dict, database_url: str) -> None:
    query(database_url, "INSERT INTO suppressions (user_id, email, reason) SELECT id, 'gone@example.com', 'manual'"
          " FROM users")
    csv = b"Email,Name,Company,Role\nann@example.com,Ann,Acme,CTO\nANN@example.com,Ann again,,\ngone@example.com,,,\n"
    r = server.post("/api/threads/bulk/csv", data={"assistant_id": persona["id"]},
                    files={"file": ("list.csv", csv, "text/csv")})
    assert r.status_code == 201, r.text
    body = r.json()
    assert len(body["created"]) == 1
    assert [(s["row"], s["email"]) for s in body["skipped"]] == [(2, "ANN@example.com"), (3, "gone@example.com")]
    assert "suppression list" in body["skipped"][1]["reason"]
    thread = server.thread(body["created"][0])
    assert thread["recipient_name"] == "Ann" and "role: CTO" in thread["context"]


def test_control_characters_and_zoned_times_are_refused_with_a_message(server: ServerProcess, persona: dict,
                                                                       database_url: str) -> None:
    aid, nobody = persona["id"], str(uuid.uuid4())
    before = query(database_url, COUNT_SQL)[0]
    surrogate = b'{"name": "\\ud800", "sender_name": "A", "offer": "o", "goal": "g"}'
    cases = [
        ("POST", "/api/assistants", 422, "control characters", {"json": {**PERSONA, "name": "Beta\x00"}}),
        ("POST", "/api/assistants", 422, "control characters", {"json": {**PERSONA, "offer": "ring\x07"}}),
        ("POST", "/api/assistants", 422, "single line", {"json": {**PERSONA, "sender_name": "Anna\r\nBcc: x@y.z"}}),
        ("POST", "/api/assistants", 422, "valid string",
         {"content": surrogate, "headers": {"content-type": "application/json"}}),
        ("POST", "/api/assistants", 422, "time zone", {"json": {**PERSONA, "send_start": "00:00:00Z"}}),
        ("POST", "/api/assistants", 422, "send_end", {"json": {**PERSONA, "send_end": "17:00:00+02:00"}}),
        ("PATCH", f"/api/assistants/{aid}", 422, "time zone", {"json": {"send_start": "08:00Z"}}),
        ("PATCH", f"/api/assistants/{aid}", 422, "control characters", {"json": {"knowledge": "a\x00b"}}),
        ("GET", "/api/threads?q=%00", 422, "control characters", {}),
        ("GET", "/api/threads?q=a%0Ab", 422, "single line", {}),
        ("GET", "/api/threads?cursor=%00", 422, "control characters", {}),
        ("POST", "/api/threads", 422, "recipient_name",
         {"json": {"assistant_id": aid, "recipient_email": "ok@example.com", "recipient_name": "Bo\x00b"}}),
        ("POST", "/api/threads", 422, "control characters",
         {"json": {"assistant_id": aid, "recipient_email": "ok@example.com", "context": "\x1b[31m"}}),
        ("POST", "/api/threads/bulk", 422, "recipients",
         {"json": {"assistant_id": aid, "recipients": [{"email": "a@example.com", "name": "\x00"}]}}),
        ("POST", "/api/threads/bulk", 422, "nothing was created",
         {"json": {"assistant_id": aid, "recipients": [{"email": "a@example.com", "role": "CTO\x00"}]}}),
        ("POST", f"/api/threads/{nobody}/sandbox-reply", 422, "single line",
         {"json": {"text": "hi", "headers": {"X-Test": "a\r\nBcc: eve@example.org"}}}),
        ("POST", f"/api/threads/{nobody}/sandbox-reply", 422, "header name",
         {"json": {"text": "hi", "headers": {"Bad Name:": "x"}}}),
        ("POST", f"/api/threads/{nobody}/sandbox-reply", 422, "control characters", {"json": {"text": "hi\x00"}}),
        ("POST", f"/api/threads/{nobody}/sandbox-reply", 422, "single line",
         {"json": {"text": "hi", "subject": "Re\nBcc: x"}}),
        ("POST", f"/api/threads/{nobody}/regenerate", 422, "control characters", {"json": {"feedback": "\x00"}}),
        ("POST", f"/api/threads/{nobody}/approve", 422, "control characters", {"json": {"wait_id": "w\x00"}}),
        ("POST", f"/api/threads/{nobody}/reply", 422, "control characters", {"json": {"text": "\x08"}}),
        ("DELETE", "/api/suppressions/a%00b@example.com", 422, "control characters", {}),
        ("POST", "/api/suppressions", 422, "control characters",
         {"json": {"email": "a@example.com", "reason": "\x00"}}),
        ("POST", "/api/suppressions/import", 422, "control characters",
         {"data": {"reason": "x\x00"}, "files": {"file": ("l.csv", b"email\na@example.com\n", "text/csv")}}),
    ]
    for method, path, status, needle, kw in cases:
        _bad(server, method, path, status, needle, **kw)
    assert query(database_url, COUNT_SQL)[0] == before, "a failed request left rows or jobs behind"
    assert query(database_url, "SELECT count(*) AS n FROM suppressions")[0]["n"] == 0


def test_pages_drop_control_characters_instead_of_failing(server: ServerProcess, persona: dict) -> None:
    c = server.client
    r = c.get("/threads", params={"q": "bob\x00\x1b"})
    assert r.status_code == 200 and 'value="bob"' in r.text
    token = re.search(r'name="csrf-token" content="([^"]+)"', r.text).group(1)
    r = c.post("/settings/suppressions/remove", data={"csrf_token": token, "email": "a\x00@example.com"})
    assert r.status_code == 303
    r = c.post("/settings/suppressions", data={"csrf_token": token, "email": "b\x00@example.com", "reason": "\x07"})
    assert r.status_code == 303
    assert [s["email"] for s in c.get("/api/suppressions").json()] == ["b@example.com"]
