"""Safe sending with a controllable clock: windows, the daily cap, spacing, replies first, the bounce-rate pause.

Runs in-process with the real graph, dispatcher and PostgreSQL; mail goes through the real Gmail transport to
the Gmail wire fake. The clock is injected, so no test sleeps through real hours.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from google.oauth2.credentials import Credentials

from agent.assistants import service as assistants
from agent.assistants.models import AssistantFields
from agent.config import Settings
from agent.google.gmail import GmailTransport
from agent.sending import queue
from agent.threads import service as threads
from agent.threads.models import ThreadCreate
from runtime import inbound, runner
from runtime.services import Services
from runtime.startup import open_services
from tests.fakes.gmail import FakeGmail
from tests.fakes.google_oidc import FakeGoogleOIDC
from tests.support import PERSONA, query

ME = "founder@gmail.com"
MONDAY_8AM = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
GMAIL_SCOPES = ("openid", "email", "https://www.googleapis.com/auth/gmail.send",
                "https://www.googleapis.com/auth/gmail.readonly")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def google() -> Iterator[tuple[FakeGoogleOIDC, FakeGmail]]:
    with FakeGoogleOIDC() as oidc, FakeGmail(oidc.email_for_access_token) as gmail:
        yield oidc, gmail


@pytest.fixture
def settings(database_url: str, model, tmp_path: Path) -> Settings:
    fake, _ = model
    return Settings(DATABASE_URL=database_url, OPENAI_API_KEY="k", OPENAI_BASE_URL=fake.base_url,
                    EA_LLM_MAX_RETRIES=0, EA_DATA_DIR=tmp_path)


async def _world(svc: Services, google: tuple[FakeGoogleOIDC, FakeGmail], *, cap: int, **persona: Any) -> UUID:
    """The local user becomes a Gmail user whose mail goes through the Gmail fake; returns the persona id."""
    oidc, gmail = google

    async def revoked(why: str) -> None:
        raise AssertionError(f"grant revoked unexpectedly: {why}")

    transport = GmailTransport(credentials=Credentials(token=oidc.access_token_for(ME, GMAIL_SCOPES)),
                               api_url=gmail.base_url, address=ME, retry_base=0.01, max_attempts=3,
                               on_revoked=revoked)

    async def transport_for(*_: Any, **__: Any) -> GmailTransport:
        return transport

    svc.transport_for = svc.thread_transport = transport_for  # type: ignore[method-assign]
    async with svc.pool.connection() as conn:
        await conn.execute("UPDATE users SET email = %s WHERE id = %s", (ME, svc.local_user_id))
        await conn.execute("INSERT INTO sending_settings (user_id, daily_cap, spacing_min_seconds,"
                           " spacing_max_seconds) VALUES (%s, %s, 60, 180)", (svc.local_user_id, cap))
        fields = AssistantFields(**{**PERSONA, "autonomy": "autonomous", "send_days": [1, 2, 3, 4, 5],
                                    "send_start": time(9), "send_end": time(17), **persona})
        return (await assistants.create(conn, user_id=svc.local_user_id, fields=fields)).id


async def _start(svc: Services, persona_id: UUID, emails: list[str]) -> list[UUID]:
    ids = []
    for email in emails:
        async with svc.pool.connection() as conn:
            row = await threads.create(conn, user_id=svc.local_user_id, transport="gmail",
                                       data=ThreadCreate(assistant_id=persona_id, recipient_email=email))
        ids.append(row.id)
        assert await runner.advance(svc, thread_id=row.id, event=None) == "ran"
    return ids


async def _dispatch_until(svc: Services, clock: Clock, until: datetime) -> list[tuple[datetime, UUID, str]]:
    """Run the dispatcher the way its jobs would, moving the clock to each wake-up, until `until`."""
    released: list[tuple[datetime, UUID, str]] = []
    while clock.now < until:
        async with svc.pool.connection() as conn:
            d = await queue.dispatch_once(conn, user_id=svc.local_user_id, now=clock.now, rng=svc.rng)
        if d.released is not None:
            released.append((clock.now, d.released.thread_id, d.released.event))
            event = {"type": d.released.event, "wait_id": d.released.wait_id}
            assert await runner.advance(svc, thread_id=d.released.thread_id, event=event) == "ran"
        if d.wake_at is None:
            break
        clock.now = max(d.wake_at, clock.now + timedelta(seconds=1) if d.released is None else clock.now)
    return released


async def test_cap_windows_spacing_and_replies_first(settings: Settings, google, database_url: str) -> None:
    clock = Clock(MONDAY_8AM)
    async with open_services(settings) as svc:
        svc.clock, svc.rng = clock, random.Random(7)
        persona = await _world(svc, google, cap=50)
        ids = await _start(svc, persona, [f"lead{i:03}@example.com" for i in range(120)])
        assert query(database_url, "SELECT count(*) AS n FROM send_queue WHERE dispatched_at IS NULL")[0]["n"] == 120
        assert not google[1].sent(ME), "nothing goes out before the window opens"
        estimates = query(database_url, "SELECT send_at FROM threads ORDER BY created_at")
        monday = await _dispatch_until(svc, clock, datetime(2026, 11, 30, 23, 59, tzinfo=UTC))
        assert len(monday) == 50 and [t for _, t, _ in monday] == ids[:50], "50 today, in the order started"
        assert estimates[0]["send_at"] is None or estimates[0]["send_at"] >= datetime(2026, 11, 30, 9, tzinfo=UTC)

        # Overnight a lead answers; on Tuesday the answer goes before the queued first emails.
        sent_to_lead0 = next(m for m in google[1].sent(ME) if m["To"].addresses[0].addr_spec == "lead000@example.com")
        reply = EmailMessage()
        reply["From"], reply["To"], reply["Subject"] = "lead000@example.com", ME, "Re: " + sent_to_lead0["Subject"]
        reply["Message-ID"], reply["In-Reply-To"] = "<r1@example.com>", sent_to_lead0["Message-ID"]
        reply.set_content("Interested - what does it cost?")
        gmail_id = google[1].deliver(ME, reply.as_bytes())
        clock.now = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
        received = await inbound.receive(svc, user_id=svc.local_user_id, transport=await svc.transport_for(ids[0]),
                                         provider_message_id=gmail_id)
        assert received.new and received.thread_id == ids[0]
        assert await runner.advance(svc, thread_id=ids[0], event={"type": "reply"}) == "ran"
        tuesday = await _dispatch_until(svc, clock, datetime(2026, 12, 1, 23, 59, tzinfo=UTC))
        assert tuesday[0][1] == ids[0], "the answer to a reply goes before new first emails"
        assert len(tuesday) == 50 and [t for _, t, _ in tuesday[1:]] == ids[50:99]
        wednesday = await _dispatch_until(svc, clock, datetime(2026, 12, 2, 23, 59, tzinfo=UTC))
        assert [t for _, t, _ in wednesday] == ids[99:]

    released = monday + tuesday + wednesday
    assert all(time(9) <= at.time() < time(17) and at.isoweekday() <= 5 for at, _, _ in released), "inside the window"
    for day in (monday, tuesday, wednesday):
        gaps = [(b[0] - a[0]).total_seconds() for a, b in zip(day, day[1:], strict=False)]
        assert gaps and all(60 <= g <= 180 for g in gaps), f"spacing out of range: {min(gaps)}..{max(gaps)}"
    assert len(google[1].sent(ME)) == 121, "120 first emails and one answer, each exactly once"
    per_day = query(database_url, "SELECT sent_at::date AS d, count(*) AS n FROM outbox GROUP BY 1 ORDER BY 1")
    assert [r["n"] for r in per_day] == [50, 50, 21]


async def test_bounce_rate_pauses_new_outreach_until_resumed(settings: Settings, google, database_url: str) -> None:
    clock = Clock(MONDAY_8AM)
    async with open_services(settings) as svc:
        svc.clock, svc.rng = clock, random.Random(3)
        persona = await _world(svc, google, cap=100)
        first = await _start(svc, persona, [f"b{i}@example.com" for i in range(12)])
        await _dispatch_until(svc, clock, datetime(2026, 11, 30, 12, tzinfo=UTC))
        assert len(google[1].sent(ME)) == 12
        for tid in first[:2]:  # two of twelve bounce: 17% > 5%
            original = next(m for m in google[1].messages(ME, "SENT") if m.thread_id and
                            query(database_url, "SELECT provider_thread_id FROM threads WHERE id = %s",
                                  (tid,))[0]["provider_thread_id"] == m.thread_id)
            dsn = (b"From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\r\nTo: " + ME.encode() +
                   b"\r\nSubject: Delivery Status Notification (Failure)\r\nX-Failed-Recipients: x@example.com\r\n"
                   b"Message-ID: <dsn-" + str(tid).encode() + b"@mx.google.com>\r\n\r\nAddress not found.\r\n")
            gmail_id = google[1].deliver(ME, dsn, thread_id=original.thread_id)
            await inbound.receive(svc, user_id=svc.local_user_id, transport=await svc.transport_for(tid),
                                  provider_message_id=gmail_id)
            assert await runner.advance(svc, thread_id=tid, event={"type": "reply"}) == "ran"
        assert {r["close_reason"] for r in query(database_url, "SELECT close_reason FROM threads WHERE id = ANY(%s)",
                                                  (first[:2],))} == {"bounced"}
        later = await _start(svc, persona, ["c1@example.com", "c2@example.com"])
        assert await _dispatch_until(svc, clock, datetime(2026, 11, 30, 16, tzinfo=UTC)) == []
        reason = query(database_url, "SELECT outreach_paused_reason FROM sending_settings")[0]["outreach_paused_reason"]
        assert reason.startswith("17% of your last 12 emails bounced")
        assert query(database_url, "SELECT summary FROM events WHERE kind = 'outreach_paused'")[0]["summary"] == reason

        async with svc.pool.connection() as conn:
            from agent.sending import settings as sending_settings

            shown = await sending_settings.update(conn, user_id=svc.local_user_id,
                                                  changes=sending_settings.SendingSettingsUpdate(resume_outreach=True),
                                                  now=clock.now)
        assert shown.outreach_paused_reason is None
        resumed = await _dispatch_until(svc, clock, datetime(2026, 11, 30, 16, 30, tzinfo=UTC))
        assert [t for _, t, _ in resumed] == later


def _persona_of(database_url: str, thread_id: UUID) -> UUID:
    return query(database_url, "SELECT assistant_id FROM threads WHERE id = %s", (thread_id,))[0]["assistant_id"]


async def _spaced(svc: Services, google: tuple[FakeGoogleOIDC, FakeGmail], clock: Clock,
                  emails: list[str]) -> list[UUID]:
    """Threads to `emails` started in an open window with a fixed 60 s spacing: the first goes, the others wait."""
    svc.clock, svc.rng = clock, random.Random(5)
    persona = await _world(svc, google, cap=50)
    async with svc.pool.connection() as conn:
        await conn.execute("UPDATE sending_settings SET spacing_min_seconds = 60, spacing_max_seconds = 60")
    return await _start(svc, persona, emails)


async def test_an_email_whose_slot_is_open_goes_in_the_run_that_queued_it(settings: Settings, google,
                                                                          database_url: str) -> None:
    clock = Clock(MONDAY_8AM + timedelta(hours=2))  # inside the window
    async with open_services(settings) as svc:
        first, second = await _spaced(svc, google, clock, ["now@example.com", "next@example.com"])

        # The first email's dispatcher pass ran in its own run's job and released it there: sent, the thread waits
        # for the reply, and neither a dispatcher job nor a slot resume was queued for it.
        assert [m["To"].addresses[0].addr_spec for m in google[1].sent(ME)] == ["now@example.com"]
        status = {r["id"]: r["status"] for r in query(database_url, "SELECT id, status FROM threads")}
        assert status[first] == "waiting" and status[second] == "active"
        jobs = query(database_url, "SELECT task_name, args, scheduled_at FROM procrastinate_jobs ORDER BY id")
        assert not [j for j in jobs if j["task_name"] == "ea:resume_thread"], jobs
        # The second is held by the spacing: one dispatcher pass is queued for when its slot comes.
        assert [(j["task_name"], j["scheduled_at"]) for j in jobs] == [
            ("ea:dispatch_sends", clock.now + timedelta(seconds=60))]
        assert query(database_url, "SELECT thread_id, dispatched_at FROM send_queue WHERE dispatched_at IS NULL") == [
            {"thread_id": second, "dispatched_at": None}]

        # An email with INLINE_PASS_AHEAD others before it (a campaign's later first emails) wakes the dispatcher job
        # instead: queued passes collapse into one, so a thousand starts do not make a thousand passes over the queue.
        persona = _persona_of(database_url, first)
        more = await _start(svc, persona, [f"later{i}@example.com" for i in range(runner.INLINE_PASS_AHEAD)])
        jobs = query(database_url, "SELECT task_name, scheduled_at FROM procrastinate_jobs ORDER BY id")
        assert [(j["task_name"], j["scheduled_at"]) for j in jobs] == [
            ("ea:dispatch_sends", clock.now + timedelta(seconds=60)), ("ea:dispatch_sends", None)]
        assert len(query(database_url, "SELECT 1 FROM send_queue WHERE dispatched_at IS NULL")) == 1 + len(more)


async def test_a_pass_sends_its_own_runs_email_first_when_several_slots_are_open_never_past_the_spacing(
        settings: Settings, google) -> None:
    clock = Clock(MONDAY_8AM)  # before the window: the emails queue and nothing goes
    async with open_services(settings) as svc:
        svc.clock, svc.rng = clock, random.Random(5)
        persona = await _world(svc, google, cap=50)
        first, second, third = await _start(svc, persona, ["a@example.com", "b@example.com", "c@example.com"])
        assert google[1].sent(ME) == []
        clock.now += timedelta(hours=2)  # the window opens
        async with svc.pool.connection() as conn:
            # With spacing only the head of the line's slot has come: preferring the third does not jump the line.
            await conn.execute("UPDATE sending_settings SET spacing_min_seconds = 60, spacing_max_seconds = 60")
            head = await queue.dispatch_once(conn, user_id=svc.local_user_id, now=clock.now, rng=svc.rng, prefer=third)
            assert head.released.thread_id == first and head.wake_at == clock.now + timedelta(seconds=60)
            # Without spacing every slot has come: the preferred one goes, then the line's order.
            await conn.execute("UPDATE sending_settings SET spacing_min_seconds = 0, spacing_max_seconds = 0,"
                               " next_send_not_before = NULL")
            mine = await queue.dispatch_once(conn, user_id=svc.local_user_id, now=clock.now, rng=svc.rng, prefer=third)
            assert mine.released.thread_id == third and mine.wake_at == clock.now  # the open slot gets a pass at once
            rest = await queue.dispatch_once(conn, user_id=svc.local_user_id, now=clock.now, rng=svc.rng)
            assert rest.released.thread_id == second
        assert {r["thread_id"] for r in query(settings.database_url, "SELECT thread_id FROM send_queue"
                                              " WHERE dispatched_at IS NOT NULL")} == {first, second, third}


async def test_a_reply_event_read_before_leaves_the_queued_email_in_line_or_delivers_its_release(
        settings: Settings, google, database_url: str) -> None:
    clock = Clock(MONDAY_8AM + timedelta(hours=2))  # inside the window
    async with open_services(settings) as svc:
        _first, held = await _spaced(svc, google, clock, ["now@example.com", "next@example.com"])
        queued = query(database_url, "SELECT step, wait_id FROM send_queue WHERE thread_id = %s", (held,))
        assert len(queued) == 1

        # A job whose run queued this email runs again (its worker died after the run) and delivers its event, a
        # reply the run had read: delivered, it would withdraw the queued email. It is ignored; the slot comes.
        assert await runner.advance(svc, thread_id=held, event={"type": "reply"}) == "stale"
        assert query(database_url, "SELECT step, wait_id FROM send_queue WHERE thread_id = %s", (held,)) == queued
        assert query(database_url, "SELECT summary FROM events WHERE thread_id = %s AND kind = 'stale'", (held,)) == [
            {"summary": "Ignored a reply that was already read; the queued answer stays."}]
        assert [m["To"].addresses[0].addr_spec for m in google[1].sent(ME)] == ["now@example.com"]

        # The slot comes and is released, and the worker dies before delivering it: the job runs again with its
        # reply event, which now delivers the release (no wait for the dispatcher's sweep).
        clock.now += timedelta(seconds=60)
        async with svc.pool.connection() as conn:
            d = await queue.dispatch_once(conn, user_id=svc.local_user_id, now=clock.now, rng=svc.rng)
        assert d.released is not None and d.released.thread_id == held
        assert await runner.advance(svc, thread_id=held, event={"type": "reply"}) == "ran"
        assert [m["To"].addresses[0].addr_spec for m in google[1].sent(ME)] == ["now@example.com", "next@example.com"]
        assert query(database_url, "SELECT status FROM threads WHERE id = %s", (held,)) == [{"status": "waiting"}]


async def test_the_dispatch_sweep_delivers_a_lost_release_as_what_it_was(settings: Settings, google,
                                                                         database_url: str) -> None:
    from types import SimpleNamespace

    from runtime.sending import dispatch_sweep

    clock = Clock(MONDAY_8AM + timedelta(hours=2))  # inside the window
    async with open_services(settings) as svc:
        _first, slot, limited = await _spaced(svc, google, clock, ["a@example.com", "b@example.com", "c@example.com"])
        clock.now += timedelta(seconds=60)
        async with svc.pool.connection() as conn:  # two passes whose resumes are lost: a slot, then a limit
            assert (await queue.dispatch_once(conn, user_id=svc.local_user_id, now=clock.now, rng=svc.rng)
                    ).released.thread_id == slot
            await conn.execute("UPDATE sending_settings SET per_thread_daily_max = 1")
            await conn.execute(  # c already had its one email today (an earlier step, say)
                "INSERT INTO outbox (thread_id, step, user_id, kind, message_id, subject, text, status, sent_at)"
                " SELECT id, 0, user_id, 'first', '<earlier@test>', 's', 't', 'sent', %s FROM threads WHERE id = %s",
                (clock.now, limited))
            over = (await queue.dispatch_once(conn, user_id=svc.local_user_id, now=clock.now, rng=svc.rng)).released
            assert over is not None and (over.thread_id, over.event) == (limited, "limit")
        query(database_url, "UPDATE send_queue SET dispatched_at = now() - interval '5 minutes'"
                            " WHERE dispatched_at IS NOT NULL")
        query(database_url, "DELETE FROM procrastinate_jobs")
        await dispatch_sweep(SimpleNamespace(additional_context={"services": svc}), timestamp=0)
    owed = {r["tid"]: r["type"] for r in query(
        database_url, "SELECT args->>'thread_id' AS tid, args->'event'->>'type' AS type FROM procrastinate_jobs"
                      " WHERE task_name = 'ea:resume_thread'")}
    assert owed == {str(slot): "send_slot", str(limited): "limit"}, "a lost limit is never delivered as a slot"
