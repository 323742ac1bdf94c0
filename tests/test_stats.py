"""Statistics over real rows: emails sent, replies, reply rate and positive replies per assistant and window."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from agent.stats import service as stats

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


class World:
    """Rows written straight into a test database."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def user(self, email: str) -> uuid.UUID:
        """A user."""
        return self.conn.execute("INSERT INTO users (email) VALUES (%s) RETURNING id", (email,)).fetchone()["id"]

    def assistant(self, user: uuid.UUID, name: str, archived: bool = False) -> uuid.UUID:
        """A persona."""
        return self.conn.execute(
            "INSERT INTO assistants (user_id, name, sender_name, offer, goal, archived_at)"
            " VALUES (%s, %s, 'Anna', 'offer', 'goal', %s) RETURNING id",
            (user, name, NOW if archived else None)).fetchone()["id"]

    def thread(self, user: uuid.UUID, assistant: uuid.UUID, status: str = "waiting", park: str | None = None) -> uuid.UUID:
        """A thread."""
        return self.conn.execute(
            "INSERT INTO threads (user_id, assistant_id, recipient_email, status, park_reason)"
            " VALUES (%s, %s, %s, %s, %s) RETURNING id",
            (user, assistant, f"{uuid.uuid4().hex[:8]}@example.com", status, park)).fetchone()["id"]

    def message(self, user: uuid.UUID, thread: uuid.UUID, direction: str, days_ago: float, auto: str | None = None) -> None:
        """An email, days_ago before NOW."""
        self.conn.execute(
            "INSERT INTO messages (user_id, thread_id, direction, author, transport, provider_message_id, from_addr,"
            " to_addr, auto_reply, at) VALUES (%s, %s, %s, %s, 'sandbox', %s, 'a@x', 'b@x', %s, %s)",
            (user, thread, direction, "assistant" if direction == "out" else "recipient", uuid.uuid4().hex, auto,
             NOW - timedelta(days=days_ago)))

    def decision(self, user: uuid.UUID, thread: uuid.UUID, intent: str, days_ago: float) -> None:
        """A decision event."""
        self.conn.execute("INSERT INTO events (user_id, thread_id, kind, detail, at) VALUES (%s, %s, 'decision', %s, %s)",
                          (user, thread, Jsonb({"intent": intent, "confidence": 0.9}), NOW - timedelta(days=days_ago)))


def build(database_url: str) -> dict[str, uuid.UUID]:
    """Two users; the first has two personas (one archived and idle), the second has noisy activity."""
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        w = World(conn)
        u, v = w.user("u@example.com"), w.user("v@example.com")
        a1, a2, a3 = w.assistant(u, "Pilots"), w.assistant(u, "Old", archived=True), w.assistant(u, "Quiet")
        t1, t2, t3, t4 = (w.thread(u, a1) for _ in range(4))
        w.message(u, t1, "out", 2), w.message(u, t1, "in", 1), w.decision(u, t1, "interested", 1)
        w.message(u, t2, "out", 3), w.message(u, t2, "in", 2, auto="auto-submitted"), w.decision(u, t2, "auto_reply", 2)
        w.message(u, t3, "out", 20), w.message(u, t3, "out", 1)
        w.message(u, t4, "out", 12), w.message(u, t4, "in", 10), w.decision(u, t4, "meeting_request", 10)
        w.thread(u, a1, status="awaiting_approval"), w.thread(u, a3, status="needs_human")
        w.thread(u, a3, status="paused", park="model down"), w.thread(u, a3, status="paused")
        b = w.assistant(v, "Theirs")
        tv = w.thread(v, b, status="awaiting_approval")
        for days in (1, 2, 3):
            w.message(v, tv, "out", days), w.message(v, tv, "in", days), w.decision(v, tv, "interested", days)
    return {"u": u, "v": v, "a1": a1, "a2": a2, "a3": a3}


async def test_summary_counts_per_window_and_assistant(database_url: str) -> None:
    ids = build(database_url)
    async with await psycopg.AsyncConnection.connect(database_url, row_factory=dict_row) as conn:
        week = await stats.summary(conn, user_id=ids["u"], days=7, now=NOW)
        month = await stats.summary(conn, user_id=ids["u"], days=30, now=NOW)
    t = week.total
    assert (t.sent, t.replies, t.contacted, t.replied, t.positive) == (3, 1, 2, 1, 1)
    assert t.reply_rate == 0.5, "t1 and t2 were contacted this week; only t1 got a person's answer"
    t = month.total
    assert (t.sent, t.replies, t.contacted, t.replied, t.positive) == (5, 2, 4, 2, 2)
    assert [r.name for r in week.per_assistant] == ["Pilots", "Quiet"], "an idle archived persona is not listed"
    quiet = week.per_assistant[1]
    assert (quiet.sent, quiet.reply_rate) == (0, None)


async def test_attention_lists_only_what_needs_this_user(database_url: str) -> None:
    ids = build(database_url)
    async with await psycopg.AsyncConnection.connect(database_url, row_factory=dict_row) as conn:
        mine = await stats.attention(conn, user_id=ids["u"])
        theirs = await stats.attention(conn, user_id=ids["v"])
    assert (mine["approval"], mine["human"], mine["parked"]) == (1, 1, 1)
    assert sorted(t["status"] for t in mine["threads"]) == ["awaiting_approval", "needs_human", "paused"]
    assert (theirs["approval"], theirs["human"], theirs["parked"]) == (1, 0, 0)
