"""Exactly once: the send node re-run after a crash never sends a second email."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from agent.assistants import service as assistants
from agent.assistants.models import AssistantFields
from agent.config import Settings
from agent.mail import outbox
from agent.mail.models import OutgoingMessage, SentMessage
from agent.threads import service as threads
from agent.threads.models import ThreadCreate
from runtime import runner
from runtime.services import Services
from runtime.startup import open_services
from tests.support import PERSONA, query


class CrashAfterSend:
    """Sends for real, then fails as if the process died before recording it."""

    name = "sandbox"

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.crashes_left = 1
        self.sends = 0

    async def send(self, msg: OutgoingMessage) -> SentMessage:
        sent = await self.inner.send(msg)
        self.sends += 1
        if self.crashes_left:
            self.crashes_left -= 1
            raise ConnectionResetError("simulated crash after the provider accepted the message")
        return sent

    async def find_sent(self, message_id: str) -> SentMessage | None:
        return await self.inner.find_sent(message_id)

    async def fetch(self, provider_message_id: str) -> Any:
        return await self.inner.fetch(provider_message_id)


async def _start_thread(svc: Services, email: str) -> UUID:
    async with svc.pool.connection() as conn:
        persona = await assistants.create(conn, user_id=svc.local_user_id,
                                          fields=AssistantFields(**PERSONA, autonomy="autonomous"))
        row = await threads.create(conn, user_id=svc.local_user_id, transport="sandbox",
                                   data=ThreadCreate(assistant_id=persona.id, recipient_email=email))
    return row.id


@pytest.fixture
def settings(database_url: str, model, tmp_path: Path) -> Settings:
    fake, _ = model
    return Settings(DATABASE_URL=database_url, OPENAI_API_KEY="k", OPENAI_BASE_URL=fake.base_url,
                    EA_LLM_MAX_RETRIES=0, EA_DATA_DIR=tmp_path)


def _outbound(database_url: str) -> int:
    return query(database_url, "SELECT count(*) AS n FROM sandbox_mail WHERE direction = 'out'")[0]["n"]


async def test_crash_after_transport_send_is_reconciled(settings: Settings, database_url: str) -> None:
    async with open_services(settings) as svc:
        real = await svc.transport_for(svc.local_user_id)
        crashing = CrashAfterSend(real)

        async def transport_for(*_: Any, **__: Any) -> Any:
            return crashing

        svc.transport_for = svc.thread_transport = transport_for  # type: ignore[method-assign]
        tid = await _start_thread(svc, "kim@example.com")
        assert await runner.advance(svc, thread_id=tid, event=None) == "parked"
        assert _outbound(database_url) == 1, "the provider has the email"
        assert query(database_url, "SELECT status, attempts FROM outbox") == [{"status": "pending", "attempts": 1}]

        assert await runner.advance(svc, thread_id=tid, event={"type": "retry"}) == "ran"
        assert crashing.sends == 1 and _outbound(database_url) == 1, "the re-run found it and did not send again"
        assert query(database_url, "SELECT status FROM outbox") == [{"status": "sent"}]
        sent = query(database_url, "SELECT detail FROM events WHERE kind = 'sent'")
        assert [e["detail"]["reconciled"] for e in sent] == [True]
        assert query(database_url, "SELECT status FROM threads")[0]["status"] == "waiting"


async def test_crash_after_recording_before_checkpoint(settings: Settings, database_url: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    real_send_step = outbox.send_step
    crashes = {"left": 1}

    async def send_then_die(*args: Any, **kwargs: Any) -> outbox.SendResult:
        result = await real_send_step(*args, **kwargs)
        if crashes["left"]:
            crashes["left"] -= 1
            raise ConnectionResetError("simulated crash after the outbox was marked sent, before the checkpoint")
        return result

    monkeypatch.setattr(outbox, "send_step", send_then_die)
    async with open_services(settings) as svc:
        tid = await _start_thread(svc, "lee@example.com")
        assert await runner.advance(svc, thread_id=tid, event=None) == "parked"
        assert await runner.advance(svc, thread_id=tid, event={"type": "retry"}) == "ran"
    assert _outbound(database_url) == 1
    assert query(database_url, "SELECT count(*) AS n FROM messages WHERE direction = 'out'")[0]["n"] == 1
    assert query(database_url, "SELECT status FROM threads")[0]["status"] == "waiting"
