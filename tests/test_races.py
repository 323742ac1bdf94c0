"""Events in awkward moments: each resumes the graph the way a worker would, with the real graph and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import pytest

from agent.assistants import service as assistants
from agent.assistants.models import AssistantFields, AssistantUpdate
from agent.config import Settings
from agent.threads import messages
from agent.threads import service as threads
from agent.threads.models import ThreadCreate
from runtime import inbound, runner
from runtime.services import Services
from runtime.startup import open_services
from tests.support import PERSONA, query


@pytest.fixture
def settings(database_url: str, model, tmp_path: Path) -> Settings:
    fake, _ = model
    return Settings(DATABASE_URL=database_url, OPENAI_API_KEY="k", OPENAI_BASE_URL=fake.base_url,
                    EA_LLM_MAX_RETRIES=0, EA_DATA_DIR=tmp_path)


async def _thread(svc: Services, autonomy: str) -> tuple[UUID, UUID]:
    async with svc.pool.connection() as conn:
        persona = await assistants.create(conn, user_id=svc.local_user_id,
                                          fields=AssistantFields(**PERSONA, autonomy=autonomy))
        row = await threads.create(conn, user_id=svc.local_user_id, transport="sandbox",
                                   data=ThreadCreate(assistant_id=persona.id, recipient_email="pat@example.com"))
    assert await runner.advance(svc, thread_id=row.id, event=None) == "ran"
    return row.id, persona.id


async def _reply_arrives(svc: Services, tid: UUID, text: str) -> None:
    """The recipient's reply is stored (its resume job is not run: the test decides what happens first)."""
    transport = await svc.transport_for(svc.local_user_id)
    async with svc.pool.connection() as conn:
        thread = await threads.get_any(conn, thread_id=tid)
        last = await messages.last_outbound(conn, thread_id=tid)
    provider_id = await transport.deliver_reply(thread=thread, last_message=last, our_address=last["from_addr"],
                                                text=text)
    assert (await inbound.receive(svc, user_id=svc.local_user_id, transport=transport,
                                  provider_message_id=provider_id)).new


def _sent(database_url: str) -> list[str]:
    return [r["text"] for r in query(database_url, "SELECT text FROM messages WHERE direction = 'out' ORDER BY at")]


def _status(database_url: str, tid: UUID) -> str:
    return query(database_url, "SELECT status FROM threads WHERE id = %s", (tid,))[0]["status"]


async def test_switching_to_autonomous_never_approves_a_waiting_draft(settings: Settings, database_url: str) -> None:
    async with open_services(settings) as svc:
        tid, persona = await _thread(svc, "approve_first")
        assert _status(database_url, tid) == "awaiting_approval"
        async with svc.pool.connection() as conn:
            await assistants.update(conn, user_id=svc.local_user_id, assistant_id=persona,
                                    changes=AssistantUpdate(autonomy="autonomous"))
        assert await runner.advance(svc, thread_id=tid, event={"type": "reject"}) == "ran"
    assert _sent(database_url) == [], "the rejected draft was not sent"
    assert _status(database_url, tid) == "needs_human"


async def test_takeover_wins_over_a_reply_not_yet_read(settings: Settings, database_url: str) -> None:
    async with open_services(settings) as svc:
        tid, _ = await _thread(svc, "autonomous")
        await _reply_arrives(svc, tid, "Interested, what does it cost?")
        assert await runner.advance(svc, thread_id=tid, event={"type": "takeover"}) == "ran"
        assert _status(database_url, tid) == "needs_human"
        assert await runner.advance(svc, thread_id=tid, event={"type": "reply"}) == "with_human"
    assert len(_sent(database_url)) == 1, "only the first email: the assistant did not answer after the takeover"


async def test_a_follow_up_is_dropped_when_a_reply_came_first(settings: Settings, database_url: str) -> None:
    async with open_services(settings) as svc:
        tid, _ = await _thread(svc, "autonomous")
        wait_id = query(database_url, "SELECT wait_id FROM threads WHERE id = %s", (tid,))[0]["wait_id"]
        await _reply_arrives(svc, tid, "Sounds interesting, what is the price?")
        # The timer's job runs before the reply's: the follow-up is drafted, then dropped at send.
        assert await runner.advance(svc, thread_id=tid, event={"type": "followup_due", "wait_id": wait_id}) == "ran"
    sent = _sent(database_url)
    assert len(sent) == 2 and sent[1].startswith("Thanks for your reply"), sent
    assert not any(t.startswith("Just following up") for t in sent)
    dropped = query(database_url, "SELECT detail FROM events WHERE kind = 'draft_dropped'")
    assert [d["detail"]["kind"] for d in dropped] == ["follow_up"]
