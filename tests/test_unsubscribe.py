"""One-click unsubscribe (RFC 8058) and the suppression list, over HTTP against a real server and PostgreSQL."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path
from uuid import UUID, uuid4

import httpx
import psycopg
import pytest
from cryptography.fernet import Fernet

from agent import unsubscribe
from agent.config import Settings
from agent.keyring import KeyRing, load_keyring
from agent.mail.mime import build_message
from agent.mail.models import OutgoingMessage
from tests.support import (
    ALICE,
    CAROL,
    GoogleWorld,
    ServerProcess,
    fire_timers,
    query,
    queue_follow_up,
    start_outreach,
    thread_when,
    wait_until,
)

BASE = "https://assistant.example.org"
FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture
def public_server(server_env: dict[str, str], tmp_path: Path) -> Iterator[ServerProcess]:
    """A server whose public URL (EA_BASE_URL) differs from where the test reaches it."""
    proc = ServerProcess({**server_env, "EA_BASE_URL": BASE}, log_path=tmp_path / "server.log")
    proc.start()
    yield proc
    proc.stop()


def _sent(database_url: str, to: str) -> list:
    rows = query(database_url, "SELECT raw FROM sandbox_mail WHERE direction = 'out' ORDER BY id")
    mails = [(bytes(r["raw"]), message_from_bytes(bytes(r["raw"]), policy=policy.default)) for r in rows]
    return [(raw, m) for raw, m in mails if m["To"].addresses[0].addr_spec == to]


def _token_path(mail) -> str:
    match = re.fullmatch(rf"<{re.escape(BASE)}(/u/[A-Za-z0-9_-]+)>", str(mail["List-Unsubscribe"]))
    assert match, mail["List-Unsubscribe"]
    return match.group(1)


def _nothing_changed(database_url: str, tid: str) -> None:
    assert query(database_url, "SELECT * FROM suppressions") == []
    assert query(database_url, "SELECT status FROM threads WHERE id = %s", (tid,)) == [{"status": "waiting"}]


def test_one_click_unsubscribe(public_server: ServerProcess, database_url: str, server_env: dict[str, str]) -> None:
    server = public_server
    persona = server.create_assistant(autonomy="autonomous")
    tid = server.create_thread(persona["id"], "Bob@Example.com")["id"]
    other = server.create_thread(persona["id"], "zoe@example.net")["id"]
    server.wait_status(tid, "waiting")
    server.wait_status(other, "waiting")

    # Every outgoing email carries the https link (no mailto) and the one-click marker, on one unencoded line.
    [(raw, mail)] = _sent(database_url, "bob@example.com")
    path = _token_path(mail)
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "mailto:" not in str(mail["List-Unsubscribe"])
    line = next(x for x in raw.split(b"\r\n") if x.startswith(b"List-Unsubscribe:"))
    assert line == f"List-Unsubscribe: <{BASE}{path}>".encode(), "never folded into RFC 2047 encoded words"
    # The link names the user, the thread and the recipient, signed with the installation's key ring.
    ring = load_keyring(Settings(EA_DATA_DIR=server_env["EA_DATA_DIR"]))
    named = unsubscribe.read_token(ring, path.removeprefix("/u/"))
    user_id = query(database_url, "SELECT user_id FROM threads WHERE id = %s", (tid,))[0]["user_id"]
    assert named == unsubscribe.Unsubscribe(user_id=user_id, thread_id=UUID(tid), email="bob@example.com")
    [(_, zoe_mail)] = _sent(database_url, "zoe@example.net")
    assert _token_path(zoe_mail) != path, "each recipient has their own link"

    # Opening the link only shows a confirmation page: mail scanners open links, and nothing may change.
    page = server.client.get(path)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "bob@example.com" in page.text and '<form method="post"' in page.text and "Unsubscribe</button>" in page.text
    assert page.headers["referrer-policy"] == "no-referrer" and page.headers["cache-control"] == "no-store"
    _nothing_changed(database_url, tid)

    # Forged and altered tokens are refused with a clear message and change nothing.
    token = path.removeprefix("/u/")
    middle = len(token) // 2
    altered = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1:]
    foreign = unsubscribe.make_token(KeyRing([Fernet.generate_key().decode()]), user_id=user_id,
                                     thread_id=UUID(tid), email="bob@example.com")
    for bad in (altered, foreign, "forged-token", token[:-4]):
        r = server.post(f"/u/{bad}", content=b"List-Unsubscribe=One-Click", headers=FORM)
        assert r.status_code == 400, (bad, r.text)
        assert "unsubscribe link is not valid" in r.json()["detail"]
    r = server.client.get(f"/u/{altered}")
    assert r.status_code == 400 and "This link is not valid" in r.text
    _nothing_changed(database_url, tid)

    # The one-click POST (as Gmail sends it, no cookie, no sign-in) suppresses the address and closes the thread.
    wait_id = server.thread(tid)["wait_id"]
    r = server.post(path, content=b"List-Unsubscribe=One-Click", headers=FORM)
    assert r.status_code == 200 and r.json() == {"status": "unsubscribed"}
    assert query(database_url, "SELECT email, reason, source_thread_id FROM suppressions") == [
        {"email": "bob@example.com", "reason": "unsubscribed (one-click)", "source_thread_id": UUID(tid)}]
    t = server.thread(tid)
    assert (t["status"], t["close_reason"]) == ("closed", "unsubscribed")
    closed = [e for e in t["events"] if e["kind"] == "closed"]
    assert len(closed) == 1 and closed[0]["actor"] == "recipient" and "one-click" in closed[0]["summary"]
    assert server.thread(other)["status"] == "waiting", "other recipients are untouched"

    # Idempotent: the page's button (a browser form) posts again; still one suppression, one close event.
    r = server.post(path, data={"List-Unsubscribe": "One-Click"}, headers={"accept": "text/html"})
    assert r.status_code == 200 and "You are unsubscribed" in r.text
    assert query(database_url, "SELECT count(*) AS n FROM suppressions")[0]["n"] == 1
    assert [e["kind"] for e in server.thread(tid)["events"]].count("closed") == 1
    assert "You are unsubscribed" in server.client.get(path).text

    # The closed thread has no timer left; a follow-up queued just before the close sends nothing; a new thread
    # to the address is refused.
    assert fire_timers(database_url, tid, wait_id) == 0
    queue_follow_up(database_url, tid, wait_id)
    wait_until(lambda: [e for e in server.thread(tid)["events"] if e["kind"] == "ignored"], what="ignored timer")
    assert len(_sent(database_url, "bob@example.com")) == 1
    r = server.post("/api/threads", json={"assistant_id": persona["id"], "recipient_email": "bob@example.com"})
    assert r.status_code == 409 and "suppression list" in r.json()["detail"]


def test_suppression_api(server: ServerProcess, database_url: str) -> None:
    persona = server.create_assistant(autonomy="autonomous")
    tid = server.create_thread(persona["id"], "ann@example.com")["id"]
    kept = server.create_thread(persona["id"], "kim@example.com")["id"]
    server.wait_status(tid, "waiting")

    # By hand: suppressed, and the open thread to the address closes as "suppressed".
    r = server.post("/api/suppressions", json={"email": "Ann@Example.com", "reason": "asked on the phone"})
    assert r.status_code == 201, r.text
    assert r.json() == {"email": "ann@example.com", "created": True, "closed_thread_ids": [tid]}
    t = server.thread(tid)
    assert (t["status"], t["close_reason"]) == ("closed", "suppressed")
    assert any(e["kind"] == "closed" and e["actor"] == "user" for e in t["events"])
    again = server.post("/api/suppressions", json={"email": "ann@example.com"})
    assert again.status_code == 200 and again.json()["created"] is False
    listed = server.client.get("/api/suppressions").json()
    assert [(s["email"], s["reason"]) for s in listed] == [("ann@example.com", "asked on the phone")]

    # Bad input answers a clear JSON error.
    r = server.post("/api/suppressions", json={"email": "not-an-address"})
    assert r.status_code == 422 and r.json()["detail"].startswith("email:")
    r = server.client.delete("/api/suppressions/nobody@example.com")
    assert r.status_code == 404 and r.json() == {"detail": "nobody@example.com is not on your suppression list."}

    # CSV import: good rows are added (and close their threads), bad rows are reported with their row numbers.
    csv = "name,Email\nKim,kim@example.com\nBad,not an email\n,\nAnn again,ann@example.com\nLee,LEE@example.org\n"
    r = server.post("/api/suppressions/import", files={"file": ("list.csv", csv.encode(), "text/csv")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["added"], body["already_suppressed"], body["closed_thread_ids"]) == (2, 1, [kept])
    assert [(e["row"], e["value"]) for e in body["errors"]] == [(3, "not an email")]
    assert "not an email address" in body["errors"][0]["error"]
    assert server.thread(kept)["close_reason"] == "suppressed"
    emails = {s["email"]: s["reason"] for s in server.client.get("/api/suppressions").json()}
    assert emails == {"ann@example.com": "asked on the phone", "kim@example.com": "imported",
                      "lee@example.org": "imported"}
    r = server.post("/api/suppressions/import", files={"file": ("x.csv", b"name,phone\nA,1\n", "text/csv")})
    assert r.status_code == 422 and "email column" in r.json()["detail"]
    old_excel = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # an .xls (OLE2) file: refused with what to do instead
    r = server.post("/api/suppressions/import", files={"file": ("x.xls", old_excel, "application/vnd.ms-excel")})
    assert r.status_code == 422 and ".xlsx" in r.json()["detail"]

    # Lifting a suppression allows a new thread; the closed one stays closed.
    assert server.client.delete("/api/suppressions/ANN@example.com").status_code == 204
    assert "ann@example.com" not in {s["email"] for s in server.client.get("/api/suppressions").json()}
    assert server.thread(tid)["status"] == "closed"
    server.create_thread(persona["id"], "ann@example.com")


def test_suppressed_while_awaiting_approval(server: ServerProcess, database_url: str) -> None:
    persona = server.create_assistant(autonomy="approve_first")
    waiting = server.create_thread(persona["id"], "max@example.com")["id"]
    by_api = server.create_thread(persona["id"], "eve@example.com")["id"]
    draft = server.wait_status(waiting, "awaiting_approval")["pending_draft"]
    server.wait_status(by_api, "awaiting_approval")

    # The address is suppressed by another path (a bounce or an opt-out seen elsewhere) while the draft waits:
    # approving it sends nothing, and the refusal is recorded.
    query(database_url, "INSERT INTO suppressions (user_id, email, reason) SELECT user_id, recipient_email,"
          " 'bounced' FROM threads WHERE id = %s", (waiting,))
    r = server.post(f"/api/threads/{waiting}/approve", json={"wait_id": draft["wait_id"]})
    assert r.status_code == 202, r.text
    t = server.wait_status(waiting, "closed")
    assert t["close_reason"] == "suppressed"
    refused = [e for e in t["events"] if e["kind"] == "send_refused"]
    assert len(refused) == 1 and refused[0]["detail"]["reason"] == "bounced"
    assert "max@example.com is suppressed" in refused[0]["summary"]
    assert query(database_url, "SELECT status FROM outbox WHERE thread_id = %s", (waiting,)) == [{"status": "refused"}]
    assert t["messages"] == []

    # Suppressed through the API while waiting: the thread closes at once and the approval is refused.
    assert server.post("/api/suppressions", json={"email": "eve@example.com"}).json()["closed_thread_ids"] == [by_api]
    r = server.post(f"/api/threads/{by_api}/approve", json={})
    assert r.status_code == 409, r.text
    assert server.thread(by_api)["pending_draft"] is None
    assert query(database_url, "SELECT count(*) AS n FROM sandbox_mail WHERE direction = 'out'")[0]["n"] == 0


def test_token_survives_key_rotation_and_header_stays_verbatim() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    user, thread = uuid4(), uuid4()
    token = unsubscribe.make_token(KeyRing([old]), user_id=user, thread_id=thread, email="Bob@Example.com")
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert b"bob@example.com" not in raw.lower() and "bob@example.com" not in token.lower(), \
        "the address is not readable in the link"  # the whole address: three random letters can spell "bob"
    rotated = KeyRing([new, old])
    assert unsubscribe.read_token(rotated, token) == unsubscribe.Unsubscribe(user, thread, "bob@example.com")
    with pytest.raises(unsubscribe.BadToken):
        unsubscribe.read_token(KeyRing([new]), token)
    newer = unsubscribe.make_token(rotated, user_id=user, thread_id=thread, email="bob@example.com")
    assert unsubscribe.read_token(KeyRing([new]), newer).thread_id == thread, "new links use the current key"

    url = f"https://a-rather-long-host-name.example.org/u/{token}"
    assert len(url) > 150
    msg = OutgoingMessage(from_addr="a@example.org", from_name="A", to_addr="b@example.com", to_name="", subject="Hi",
                          text="Hello", message_id="<1@example.org>", extra_headers=unsubscribe.headers_for(url))
    raw = build_message(msg)
    assert f"\r\nList-Unsubscribe: <{url}>\r\n".encode() in raw
    assert b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in raw
    assert str(message_from_bytes(raw, policy=policy.default)["List-Unsubscribe"]) == f"<{url}>"
    with pytest.raises(ValueError):
        unsubscribe.VerbatimHeader("List-Unsubscribe", "<https://x/\r\nBcc: evil@example.com>")


USER_TABLES = ("assistants", "threads", "messages", "outbox", "events", "suppressions", "sandbox_mail",
               "sending_settings")
DOC = Path(__file__).resolve().parent.parent / "docs" / "compliance.md"
PLACEHOLDER_USER = "00000000-0000-0000-0000-000000000000"


def _doc_sql(title: str) -> str:
    """The SQL block of docs/compliance.md that starts with this comment."""
    blocks = re.findall(r"```sql\n(.*?)```", DOC.read_text(), re.S)
    return next(b for b in blocks if b.startswith(f"-- {title}"))


def _run(database_url: str, script: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(script.encode())  # no parameters: the script runs as written, as psql would run it


def _count(database_url: str, table: str, where: str, ids: list[str]) -> int:
    return query(database_url, f"SELECT count(*) AS n FROM {table} WHERE {where} = ANY(%s)", (ids,))[0]["n"]


def _leftovers(database_url: str, thread_ids: list[str]) -> dict[str, int]:
    found = {"threads": _count(database_url, "threads", "id::text", thread_ids)}
    for table in ("messages", "outbox", "events", "checkpoints", "checkpoint_blobs", "checkpoint_writes"):
        found[table] = _count(database_url, table, "thread_id::text", thread_ids)
    found["procrastinate_jobs"] = _count(database_url, "procrastinate_jobs", "args->>'thread_id'", thread_ids)
    return found


def test_data_deletion_recipes_in_the_docs(server: ServerProcess, database_url: str) -> None:
    persona = server.create_assistant(autonomy="autonomous")
    gus = server.create_thread(persona["id"], "gus@example.com")["id"]
    hal = server.create_thread(persona["id"], "hal@example.com")["id"]
    server.wait_status(gus, "waiting")
    server.wait_status(hal, "waiting")
    server.post(f"/api/threads/{gus}/sandbox-reply", json={"text": "Please remove me."})
    server.wait_status(gus, "closed")
    [user] = query(database_url, "SELECT user_id FROM threads WHERE id = %s", (gus,))
    user_id = str(user["user_id"])
    query(database_url, "INSERT INTO sending_settings (user_id) VALUES (%s)", (user_id,))
    before = _leftovers(database_url, [gus])
    assert before.pop("checkpoint_writes") == 0, "a closed thread keeps its last checkpoint only (no writes)"
    assert all(before.values()), "every other kind of row exists before"
    assert _count(database_url, "sandbox_mail", "provider_thread_id",
                  [query(database_url, "SELECT provider_thread_id FROM threads WHERE id = %s", (gus,))[0]
                   ["provider_thread_id"]]) == 2, "our email and their reply"
    server.stop()

    # Erasing one recipient removes their threads and everything about them; the suppression entry stays.
    erase = _doc_sql("Erase one recipient of one user.").replace(PLACEHOLDER_USER, user_id)
    _run(database_url, erase.replace("person@example.com", "gus@example.com"))
    assert not any(_leftovers(database_url, [gus]).values())
    assert query(database_url, "SELECT count(*) AS n FROM sandbox_mail")[0]["n"] == 1, "only hal's email is left"
    assert query(database_url, "SELECT email FROM suppressions") == [{"email": "gus@example.com"}]
    assert all(_leftovers(database_url, [hal])[t] for t in ("threads", "messages", "checkpoints"))

    # Deleting the user removes every row of theirs, checkpoints and queued jobs included.
    _run(database_url, _doc_sql("Delete one user and everything of theirs.").replace(PLACEHOLDER_USER, user_id))
    for table in USER_TABLES:
        assert query(database_url, f"SELECT count(*) AS n FROM {table}")[0]["n"] == 0, table
    assert not any(_leftovers(database_url, [hal]).values())
    assert query(database_url, "SELECT count(*) AS n FROM users WHERE id = %s", (user_id,))[0]["n"] == 0


def test_gmail_mail_carries_the_link_and_it_works_without_sign_in(google: GoogleWorld, google_server: ServerProcess,
                                                                  database_url: str) -> None:
    alice = google.sign_in(google_server, ALICE)
    tid = start_outreach(alice, "bob@example.org")
    thread_when(alice, tid, lambda t: t["status"] == "waiting", what="first email sent through Gmail")
    [mail] = google.gmail.sent(ALICE)
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = re.fullmatch(rf"<{re.escape(google_server.url)}(/u/[A-Za-z0-9_-]+)>", str(mail["List-Unsubscribe"]))
    assert link, mail["List-Unsubscribe"]
    [raw] = [m.raw for m in google.gmail.messages(ALICE, "SENT")]
    assert f"\r\nList-Unsubscribe: <{google_server.url}{link.group(1)}>\r\n".encode() in raw

    # A mail client posts without any session cookie, in Google mode too.
    anonymous = httpx.post(google_server.url + link.group(1), content=b"List-Unsubscribe=One-Click", timeout=15,
                           headers=FORM)
    assert anonymous.status_code == 200, anonymous.text
    t = alice.get(f"/api/threads/{tid}").json()
    assert (t["status"], t["close_reason"]) == ("closed", "unsubscribed")
    assert [s["email"] for s in alice.get("/api/suppressions").json()] == ["bob@example.org"]
    assert httpx.get(google_server.url + "/api/suppressions", timeout=15).status_code == 401, "the list needs sign-in"
    carol = google.sign_in(google_server, CAROL)
    assert carol.get("/api/suppressions").json() == [], "each user sees only their own list"
    assert carol.delete("/api/suppressions/bob@example.org").status_code == 404
    assert [s["email"] for s in alice.get("/api/suppressions").json()] == ["bob@example.org"]
