"""The escalation digest: to the owner's own address only, at most once per interval, with a controlled clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from uuid import UUID

import pytest

from agent.assistants import service as assistants
from agent.assistants.models import AssistantFields
from agent.config import Settings
from agent.mail.models import OutgoingMessage, SentMessage
from agent.mail.transport import TransportError
from agent.sending import settings as sending_settings
from agent.threads import lifecycle
from agent.threads import service as threads
from agent.threads.models import ThreadCreate
from runtime import digest, jobs, runner
from runtime.services import Services
from runtime.startup import open_services
from tests.support import PERSONA, query

BASE = "https://assistant.example.org"
T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


@pytest.fixture
def settings(database_url: str, model, tmp_path: Path) -> Settings:
    fake, _ = model
    return Settings(DATABASE_URL=database_url, OPENAI_API_KEY="k", OPENAI_BASE_URL=fake.base_url,
                    EA_LLM_MAX_RETRIES=0, EA_DATA_DIR=tmp_path, EA_BASE_URL=BASE)


async def _thread(svc: Services, user_id: UUID, email: str, *, autonomy: str = "autonomous",
                  status: str | None = None) -> UUID:
    async with svc.pool.connection() as conn:
        persona = await assistants.create(conn, user_id=user_id, fields=AssistantFields(**PERSONA, autonomy=autonomy))
        row = await threads.create(conn, user_id=user_id, transport="sandbox",
                                   data=ThreadCreate(assistant_id=persona.id, recipient_email=email))
        if status:  # put it in the wait that shows this status, as the graph would
            kind = next(k for k, v in lifecycle.WAIT_STATUS.items() if v == status)
            await lifecycle.enter_wait(conn, thread_id=row.id, wait_id=f"{kind}-1", kind=kind)
    return row.id


def _digests(database_url: str) -> list[Any]:
    rows = query(database_url, "SELECT raw FROM sandbox_mail WHERE direction = 'out' ORDER BY id")
    mails = [message_from_bytes(bytes(r["raw"]), policy=policy.default) for r in rows]
    return [m for m in mails if m["Subject"].startswith("Email assistant:")]


def _enable(database_url: str, user_id: UUID, hours: int) -> None:
    query(database_url, "INSERT INTO sending_settings (user_id, digest_enabled, digest_interval_hours)"
          " VALUES (%s, true, %s) ON CONFLICT (user_id) DO UPDATE SET digest_enabled = true,"
          " digest_interval_hours = excluded.digest_interval_hours", (user_id, hours))


async def test_digest_goes_to_the_owner_only_and_not_too_often(settings: Settings, database_url: str) -> None:
    async with open_services(settings) as svc:
        owner = svc.local_user_id
        approval = await _thread(svc, owner, "ann@example.com", autonomy="approve_first")
        assert await runner.advance(svc, thread_id=approval, event=None) == "ran"
        human = await _thread(svc, owner, "ben@example.com", status="needs_human")
        query(database_url, "INSERT INTO events (user_id, thread_id, kind, summary) VALUES (%s, %s, 'escalated',"
              " 'They want to meet: pick a time with them.')", (owner, human))
        quiet = await _thread(svc, owner, "cy@example.com", status="waiting")
        carol = query(database_url, "INSERT INTO users (email, name) VALUES ('carol@example.org', 'Carol')"
                      " RETURNING id")[0]["id"]
        carols = await _thread(svc, carol, "dan@example.com", status="needs_human")
        assert query(database_url, "SELECT status FROM threads WHERE id = %s", (approval,))[0]["status"] == \
            "awaiting_approval"

        # Off by default: nothing is sent, however much needs the user.
        assert await digest.send_digests(svc, now=T0) == []
        async with svc.pool.connection() as conn:
            row = await sending_settings.get_row(conn, user_id=owner)
        assert (row["digest_enabled"], row["digest_interval_hours"], row["last_digest_at"]) == (False, 24, None)
        assert _digests(database_url) == []

        _enable(database_url, owner, 6)
        _enable(database_url, carol, 24)
        sent = await digest.send_digests(svc, now=T0)
        assert sorted(d.to for d in sent) == ["carol@example.org", "you@localhost"]
        mails = _digests(database_url)
        assert len(mails) == 2
        for mail in mails:
            to = [a.addr_spec for a in mail["To"].addresses]
            assert to in (["you@localhost"], ["carol@example.org"]), "only ever the owner's own address"
            assert mail["From"].addresses[0].addr_spec == to[0]
            assert mail["Cc"] is None and mail["Bcc"] is None and mail["Reply-To"] is None
            assert mail["Auto-Submitted"] == "auto-generated", "no auto-responder answers it"
        mine = next(m for m in mails if m["To"].addresses[0].addr_spec == "you@localhost")
        body = mine.get_body(("plain",)).get_content()
        assert mine["Subject"] == "Email assistant: 2 conversations need you"
        assert f"{BASE}/threads/{approval}" in body and f"{BASE}/threads/{human}" in body
        assert "They want to meet" in body and "ann@example.com" in body
        assert str(quiet) not in body and str(carols) not in body, "only the owner's threads that need them"
        theirs = next(m for m in mails if m["To"].addresses[0].addr_spec == "carol@example.org")
        text = theirs.get_body(("plain",)).get_content()
        assert f"{BASE}/threads/{carols}" in text and str(approval) not in text and "ann@example.com" not in text

        # Recorded for the dashboard: when it went, to whom, which threads.
        async with svc.pool.connection() as conn:
            last = await digest.last_sent(conn, user_id=owner)
        assert last["detail"]["to"] == "you@localhost" and last["detail"]["at"] == T0.isoformat()
        assert sorted(last["detail"]["thread_ids"]) == sorted([str(approval), str(human)])
        assert query(database_url, "SELECT last_digest_at FROM sending_settings WHERE user_id = %s",
                     (owner,)) == [{"last_digest_at": T0}]

        # Not more often than configured (6 hours for the owner, 24 for Carol).
        for later in (timedelta(minutes=5), timedelta(hours=1), timedelta(hours=5, minutes=59)):
            assert await digest.send_digests(svc, now=T0 + later) == []
        assert len(_digests(database_url)) == 2
        again = await digest.send_digests(svc, now=T0 + timedelta(hours=6))
        assert [d.to for d in again] == ["you@localhost"]
        assert len(_digests(database_url)) == 3
        assert await digest.send_digests(svc, now=T0 + timedelta(hours=11)) == []

        # Nothing needs the owner: no digest even when one is due, and the interval is not used up.
        query(database_url, "UPDATE threads SET status = 'closed', close_reason = 'stopped' WHERE id IN (%s, %s)",
              (approval, human))
        assert await digest.send_digests(svc, now=T0 + timedelta(hours=12)) == []
        assert query(database_url, "SELECT last_digest_at FROM sending_settings WHERE user_id = %s",
                     (owner,)) == [{"last_digest_at": T0 + timedelta(hours=6)}]
        assert [d.to for d in await digest.send_digests(svc, now=T0 + timedelta(hours=24))] == ["carol@example.org"]
        assert len(_digests(database_url)) == 4


class FailingOnce:
    """A mailbox that refuses the first message, as Gmail does when it is briefly unavailable."""

    name = "sandbox"

    def __init__(self, inner: Any) -> None:
        self.inner, self.failures = inner, 1

    async def send(self, msg: OutgoingMessage) -> SentMessage:
        if self.failures:
            self.failures -= 1
            raise TransportError("Gmail answered 503")
        return await self.inner.send(msg)


async def test_failed_digest_is_retried_at_the_next_tick(settings: Settings, database_url: str) -> None:
    async with open_services(settings) as svc:
        owner = svc.local_user_id
        await _thread(svc, owner, "eve@example.com", status="needs_human")
        _enable(database_url, owner, 24)
        flaky = FailingOnce(await svc.transport_for(owner))

        async def transport_for(user_id: UUID, kind: str | None = None) -> Any:
            assert user_id == owner
            return flaky

        svc.transport_for = transport_for  # type: ignore[method-assign]
        assert await digest.send_digests(svc, now=T0) == []
        assert query(database_url, "SELECT last_digest_at FROM sending_settings") == [{"last_digest_at": None}]
        assert query(database_url, "SELECT count(*) AS n FROM events WHERE kind = 'digest_sent'")[0]["n"] == 0
        sent = await digest.send_digests(svc, now=T0 + timedelta(minutes=5))
        assert [d.to for d in sent] == ["you@localhost"] and len(_digests(database_url)) == 1

        # The periodic task sends what is due at its tick's timestamp.
        tick = T0 + timedelta(hours=24, minutes=5)
        await digest.digest_task(SimpleNamespace(additional_context={"services": svc}), int(tick.timestamp()))
        assert len(_digests(database_url)) == 2
        assert query(database_url, "SELECT last_digest_at FROM sending_settings") == [{"last_digest_at": tick}]


def test_digest_runs_every_five_minutes() -> None:
    app = jobs.make_app("postgresql://unused.invalid/db")
    assert "ea:digest" in app.tasks
    assert app.periodic_registry.periodic_tasks[("ea:digest", "digest")].cron == "*/5 * * * *"
