"""Search inside mail and the CSV/JSON exports, on real PostgreSQL rows."""

from __future__ import annotations

import csv
import io
import uuid

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from agent.threads import export
from agent.threads import service as threads
from agent.threads.service import ThreadFilter


class Rows:
    """Users, a persona, threads and emails written straight into the test database."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def user(self, email: str) -> uuid.UUID:
        """A user."""
        return self.conn.execute("INSERT INTO users (email) VALUES (%s) RETURNING id", (email,)).fetchone()["id"]

    def persona(self, user: uuid.UUID, name: str = "Pilots") -> uuid.UUID:
        """A persona."""
        return self.conn.execute("INSERT INTO assistants (user_id, name, sender_name, offer, goal)"
                                 " VALUES (%s, %s, 'Anna', 'offer', 'goal') RETURNING id", (user, name)).fetchone()["id"]

    def thread(self, user: uuid.UUID, persona: uuid.UUID, email: str, **cols: object) -> uuid.UUID:
        """A thread; extra columns as given."""
        names = ["user_id", "assistant_id", "recipient_email", *cols]
        return self.conn.execute(
            f"INSERT INTO threads ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))}) RETURNING id",
            (user, persona, email, *cols.values())).fetchone()["id"]

    def mail(self, user: uuid.UUID, thread: uuid.UUID, direction: str, text: str, subject: str = "An idea",
             auto: str | None = None) -> None:
        """An email of the thread."""
        self.conn.execute(
            "INSERT INTO messages (user_id, thread_id, direction, author, transport, provider_message_id, from_addr,"
            " to_addr, subject, text, auto_reply) VALUES (%s, %s, %s, %s, 'sandbox', %s, 'a@x', 'b@x', %s, %s, %s)",
            (user, thread, direction, "assistant" if direction == "out" else "recipient", uuid.uuid4().hex, subject,
             text, auto))


@pytest.fixture
def world(database_url: str) -> dict[str, uuid.UUID]:
    """Two users; the first has four threads with English and Russian mail, the second a thread with the same words."""
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        w = Rows(conn)
        u, v = w.user("u@example.com"), w.user("v@example.com")
        p, q = w.persona(u), w.persona(v)
        campaign = conn.execute("INSERT INTO campaigns (user_id, assistant_id, name) VALUES (%s, %s, 'Spring clinics')"
                                " RETURNING id", (u, p)).fetchone()["id"]
        bob = w.thread(u, p, "bob@example.com", recipient_name="Bob", recipient_company="=HYPERLINK(\"x\")",
                       campaign_id=campaign)
        w.mail(u, bob, "out", "Hello Bob, a scheduling tool for clinics.")
        w.mail(u, bob, "in", "What does the pricing look like for three doctors?")
        conn.execute("INSERT INTO events (user_id, thread_id, kind, detail) VALUES (%s, %s, 'decision', %s)",
                     (u, bob, Jsonb({"intent": "question", "confidence": 0.9})))
        ivan = w.thread(u, p, "ivan@example.ru", recipient_name="Иван")
        w.mail(u, ivan, "out", "Здравствуйте, Иван!")
        w.mail(u, ivan, "in", "Сколько стоит подписка? Интересуют цены.", subject="Re: Вопрос о тарифах")
        quiet = w.thread(u, p, "quiet@example.com", status="closed", close_reason="no_reply")
        w.mail(u, quiet, "out", "Hello, a scheduling tool.")
        w.mail(u, quiet, "in", "Out of office until Monday, pricing questions to sales.", auto="Auto-Submitted")
        other = w.thread(v, q, "eve@example.com")
        w.mail(v, other, "in", "pricing цены")
        return {"u": u, "v": v, "bob": bob, "ivan": ivan, "quiet": quiet, "other": other}


async def _found(database_url: str, user: uuid.UUID, q: str) -> set[uuid.UUID]:
    async with await psycopg.AsyncConnection.connect(database_url, row_factory=dict_row) as conn:
        rows, _ = await threads.list_page(conn, user_id=user, search=q)
        count = await threads.count_matching(conn, user_id=user, where=ThreadFilter(search=q))
    assert count == len(rows)
    return {r.id for r in rows}


async def test_search_finds_words_in_bodies_and_subjects_in_english_and_russian(database_url: str, world) -> None:
    u = world["u"]
    assert await _found(database_url, u, "price") == {world["bob"], world["quiet"]}, "English word forms match"
    assert await _found(database_url, u, "doctor") == {world["bob"]}
    assert await _found(database_url, u, "цена") == {world["ivan"]}, "Russian word forms match (цены → цена)"
    assert await _found(database_url, u, "тарифы") == {world["ivan"]}, "the subject is searched too"
    assert await _found(database_url, u, "подписка цены") == {world["ivan"]}, "every word must occur"
    assert await _found(database_url, u, "Иван") == {world["ivan"]}, "the recipient's name still matches"
    assert await _found(database_url, u, "bob@exa") == {world["bob"]}, "a part of an address still matches"
    assert await _found(database_url, u, "the") == set(), "stop words alone match nothing (and do not fail)"
    assert await _found(database_url, u, 'pricing -"three doctors"') == {world["quiet"]}, "web search syntax"
    assert await _found(database_url, u, "100%_\\") == set()
    assert await _found(database_url, world["v"], "pricing") == {world["other"]}, "only the user's own mail"


async def test_search_uses_the_index_and_a_huge_body_is_stored(database_url: str, world) -> None:
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        Rows(conn).mail(world["u"], world["bob"], "in", "word " * 400_000)  # 2 MB: beyond a tsvector's limit
        conn.execute("SET enable_seqscan = off")  # a handful of rows: make the planner show what it can use
        plan = "\n".join(r["QUERY PLAN"] for r in conn.execute(
            f"EXPLAIN SELECT m.thread_id FROM messages m WHERE {threads.MESSAGE_DOCUMENT}"
            " @@ websearch_to_tsquery('russian', 'pricing')"))
    assert "messages_search_idx" in plan, "the search's expression is the one the migration indexes"
    assert await _found(database_url, world["u"], "word") == {world["bob"]}


async def test_csv_export_has_every_column_and_no_formula_cells(database_url: str, world) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, row_factory=dict_row) as conn:
        text = "".join([c async for c in export.csv_chunks(conn, user_id=world["u"], where=ThreadFilter())])
        only = "".join([c async for c in export.csv_chunks(conn, user_id=world["u"],
                                                           where=ThreadFilter(search="цена"))])
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert [r["recipient_email"] for r in rows] == ["quiet@example.com", "ivan@example.ru", "bob@example.com"]
    bob = rows[2]
    assert bob["company"] == "'=HYPERLINK(\"x\")", "a formula is neutralised"
    assert (bob["campaign"], bob["persona"], bob["status"], bob["last_intent"]) == ("Spring clinics", "Pilots",
                                                                                   "active", "question")
    assert (bob["emails_sent"], bob["replies"]) == ("1", "1") and bob["first_email_at"] <= bob["last_email_at"]
    quiet = rows[0]
    assert (quiet["status"], quiet["close_reason"], quiet["replies"], quiet["campaign"]) == ("closed", "no_reply",
                                                                                           "0", "")
    assert [r["recipient_email"] for r in csv.DictReader(io.StringIO(only.lstrip("\ufeff")))] == ["ivan@example.ru"]
    assert export.safe_cell("-1+1") == "'-1+1" and export.safe_cell("@cmd") == "'@cmd"
    assert export.safe_cell("+7 999") == "'+7 999" and export.safe_cell("plain") == "plain"


async def test_history_has_the_thread_its_mail_events_and_decisions(database_url: str, world) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, row_factory=dict_row) as conn:
        data = await export.history(conn, user_id=world["u"], thread_id=world["bob"])
        with pytest.raises(Exception, match="not found"):
            await export.history(conn, user_id=world["v"], thread_id=world["bob"])
    assert data["thread"]["recipient_email"] == "bob@example.com" and "user_id" not in data["thread"]
    assert data["campaign"]["name"] == "Spring clinics" and data["persona"]["name"] == "Pilots"
    assert [m["direction"] for m in data["messages"]] == ["out", "in"]
    assert [d["detail"]["intent"] for d in data["decisions"]] == ["question"]
