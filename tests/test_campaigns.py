"""Campaigns on a real PostgreSQL: funnel, queue, reply rate, per-day series, tenant filtering; the SVG chart."""

from __future__ import annotations

import re
import uuid
from datetime import date, timedelta

import psycopg
import pytest
from psycopg.rows import dict_row

from agent.campaigns import service as campaigns
from agent.errors import NotFound
from agent.stats import service as stats
from agent.threads import bulk
from server import i18n
from server.charts import daily_svg
from server.pages.campaigns import queue_lines
from tests.test_stats import NOW, World


def build(database_url: str) -> dict[str, uuid.UUID]:
    """User u: a campaign of five threads at every stage and one thread started alone; user v: a campaign of one."""
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        w = World(conn)
        u, v = w.user("u@example.com"), w.user("v@example.com")
        a, b = w.assistant(u, "Pilots"), w.assistant(v, "Theirs")
        c = conn.execute("INSERT INTO campaigns (user_id, assistant_id, name, source) VALUES (%s, %s, 'Clinics', 'csv')"
                         " RETURNING id", (u, a)).fetchone()["id"]
        cv = conn.execute("INSERT INTO campaigns (user_id, assistant_id, name) VALUES (%s, %s, 'Theirs') RETURNING id",
                          (v, b)).fetchone()["id"]
        queued, sent, replied, meeting, closed = (w.thread(u, a) for _ in range(5))
        alone = w.thread(u, a)
        w.message(u, sent, "out", 3)
        w.message(u, replied, "out", 2), w.message(u, replied, "in", 1), w.decision(u, replied, "interested", 1)
        w.message(u, meeting, "out", 2), w.message(u, meeting, "in", 1), w.decision(u, meeting, "meeting_request", 1)
        w.message(u, closed, "out", 12), w.message(u, closed, "in", 11, auto="auto-submitted")
        w.message(u, alone, "out", 1), w.message(u, alone, "in", 0.5)
        conn.execute("UPDATE threads SET status = 'closed', close_reason = 'no_reply' WHERE id = %s", (closed,))
        conn.execute("UPDATE threads SET campaign_id = %s WHERE id = ANY(%s)",
                     (c, [queued, sent, replied, meeting, closed]))
        tv = w.thread(v, b)
        w.message(v, tv, "out", 1), w.message(v, tv, "in", 1)
        conn.execute("UPDATE threads SET campaign_id = %s WHERE id = %s", (cv, tv))
    return {"u": u, "v": v, "a": a, "c": c, "cv": cv, "queued": queued, "sent": sent, "meeting": meeting}


async def test_funnel_reply_rate_and_list_of_one_user(database_url: str) -> None:
    ids = build(database_url)
    async with await psycopg.AsyncConnection.connect(database_url, row_factory=dict_row) as conn:
        found = await campaigns.detail(conn, user_id=ids["u"], campaign_id=ids["c"])
        listed = await campaigns.list_for_user(conn, user_id=ids["u"])
        with pytest.raises(NotFound):
            await campaigns.get(conn, user_id=ids["u"], campaign_id=ids["cv"])
        with pytest.raises(NotFound):
            await campaigns.detail(conn, user_id=ids["v"], campaign_id=ids["c"])
    f = found.funnel
    assert (f.threads, f.queued, f.sent, f.replied, f.positive, f.handed_or_meeting, f.meeting, f.closed) == (
        5, 1, 4, 2, 2, 1, 1, 1), f
    assert f.closed_by_reason == {"no_reply": 1}, "an automatic reply is no reply; the closed thread says why"
    assert found.reply_rate == 0.5, "2 of the 4 contacted threads got a person's answer"
    assert found.status_counts == {"waiting": 4, "closed": 1}
    assert [(c.name, c.threads, c.open, c.sent, c.replied, c.source) for c in listed] == [
        ("Clinics", 5, 4, 4, 2, "csv")], "the thread started alone belongs to no campaign; v's campaign is not listed"


async def test_queue_says_what_goes_out_when(database_url: str) -> None:
    ids = build(database_url)
    tomorrow9 = (NOW + timedelta(days=1)).replace(hour=9, minute=0)
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        w = World(conn)
        more = [w.thread(ids["u"], ids["a"]) for _ in range(3)]
        paused = w.thread(ids["u"], ids["a"], status="paused")
        conn.execute("UPDATE threads SET campaign_id = %s WHERE id = ANY(%s)", (ids["c"], [*more, paused]))
        rows = [(ids["queued"], tomorrow9), (more[0], tomorrow9 + timedelta(minutes=2)),
                (more[1], tomorrow9 + timedelta(days=1)), (more[2], None), (paused, tomorrow9)]
        for thread, at in rows:
            conn.execute("INSERT INTO send_queue (thread_id, step, user_id, kind, priority, wait_id, estimated_at)"
                         " VALUES (%s, 0, %s, 'first', 2, 'w', %s)", (thread, ids["u"], at))
    async with await psycopg.AsyncConnection.connect(database_url, row_factory=dict_row) as conn:
        queue = await campaigns.queue(conn, user_id=ids["u"], campaign_id=ids["c"], tz="UTC")
    assert (queue.queued, queue.held, queue.unplanned, queue.next_at) == (4, 1, 1, tomorrow9)
    assert [(d.day, d.count) for d in queue.days] == [(tomorrow9.date(), 2), (tomorrow9.date() + timedelta(days=1), 1)]
    i18n.activate("en")
    lines = queue_lines(queue, NOW)
    assert lines == ["4 emails queued; the first goes tomorrow at 09:00.", "2 emails from tomorrow at 09:00",
                     "1 email on 22 Nov at 09:00", "1 more waits its turn.",
                     "1 email is held while its thread is paused."], lines


async def test_daily_series_per_scope(database_url: str) -> None:
    ids = build(database_url)
    async with await psycopg.AsyncConnection.connect(database_url, row_factory=dict_row) as conn:
        user = await stats.daily(conn, user_id=ids["u"], days=7, now=NOW)
        campaign = await stats.daily(conn, user_id=ids["u"], days=7, campaign_id=ids["c"], now=NOW)
        persona = await stats.daily(conn, user_id=ids["u"], days=30, assistant_id=ids["a"], now=NOW)
        other = await stats.daily(conn, user_id=ids["v"], days=90, campaign_id=ids["c"], now=NOW)
    assert [p.day for p in user.points] == [NOW.date() - timedelta(days=6 - i) for i in range(7)]
    by_day = {p.day: (p.sent, p.replies, p.contacted, p.replied) for p in user.points}
    assert by_day[NOW.date() - timedelta(days=2)] == (2, 0, 2, 2), "two first emails two days ago, both answered"
    assert by_day[NOW.date() - timedelta(days=1)] == (1, 2, 1, 1), "the alone thread's first email and two replies"
    assert sum(p.sent for p in campaign.points) == 3 and sum(p.replies for p in campaign.points) == 2
    assert sum(p.sent for p in user.points) == 4, "the user's chart counts the thread started alone too"
    assert len(persona.points) == 30 and sum(p.sent for p in persona.points) == 5, "12 days ago is inside 30 days"
    assert len(other.points) == 90 and sum(p.sent + p.replies for p in other.points) == 0, "never another user's rows"
    rates = [p.reply_rate for p in campaign.points]
    assert rates.count(None) == 5 and rates[-3] == 1.0 and rates[-4] == 0.0


async def test_chart_svg_has_a_bar_per_day_and_a_point_per_rated_day(database_url: str) -> None:
    ids = build(database_url)
    async with await psycopg.AsyncConnection.connect(database_url, row_factory=dict_row) as conn:
        series = await stats.daily(conn, user_id=ids["u"], days=30, now=NOW)
    i18n.activate("en")
    svg = str(daily_svg(series, chart_id="c1"))
    assert svg.count('class="bar bar-sent"') == 30 and svg.count('class="bar bar-replies"') == 30
    assert svg.count('class="point"') == sum(1 for p in series.points if p.contacted)
    assert re.search(r'<svg [^>]*role="img"[^>]*aria-labelledby="c1-title c1-desc"', svg)
    assert '<title id="c1-title">Emails sent, replies and reply rate per day, last 30 days</title>' in svg
    assert "In total 5 sent, 3 replies, reply rate 60%." in svg


def test_campaign_names() -> None:
    today = date(2026, 12, 2)
    assert bulk.campaign_name(name="  Spring   clinics ", filename="x.csv", persona="P", today=today) == "Spring clinics"
    assert bulk.campaign_name(name="", filename="C:\\lists\\clinics-may.xlsx", persona="P", today=today) == "clinics-may"
    assert bulk.campaign_name(name=None, filename=None, persona="Pilots", today=today) == "Pilots · 2026-12-02"
    assert (bulk.campaign_source(None), bulk.campaign_source("a.CSV"), bulk.campaign_source("b.xlsx")) == (
        "list", "csv", "xlsx")
