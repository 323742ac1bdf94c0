"""Storage: an email's text is stored once, readers see the same fields, and the indexes nothing reads are gone."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from agent import db
from agent.mail.models import InboundMessage, OutgoingMessage, SentMessage
from agent.threads import export, messages
from tests.support import query


def _thread(url: str) -> tuple[uuid.UUID, uuid.UUID]:
    user = query(url, "INSERT INTO users (email) VALUES ('u@example.com') RETURNING id")[0]["id"]
    persona = query(url, "INSERT INTO assistants (user_id, name, sender_name, offer, goal)"
                         " VALUES (%s, 'P', 'Anna', 'offer', 'goal') RETURNING id", (user,))[0]["id"]
    thread = query(url, "INSERT INTO threads (user_id, assistant_id, recipient_email) VALUES (%s, %s, 'bob@x.org')"
                        " RETURNING id", (user, persona))[0]["id"]
    return user, thread


def _reply(text: str, full_text: str) -> InboundMessage:
    return InboundMessage(
        provider_message_id=uuid.uuid4().hex, provider_thread_id="t", message_id=f"<{uuid.uuid4().hex}@x.org>",
        in_reply_to="<first@us>", references=("<first@us>",), from_addr="bob@x.org", from_name="Bob",
        to_addrs=("u@example.com",), subject="Re: An idea", text=text, full_text=full_text,
        received_at=datetime.now(UTC))


async def test_the_text_is_stored_once_and_every_reader_gets_the_full_text(database_url: str) -> None:
    user, thread = _thread(database_url)
    quoted = "What does it cost?\n\n> Hello Bob, an idea."
    async with await psycopg.AsyncConnection.connect(database_url, row_factory=dict_row) as conn:
        out = OutgoingMessage(from_addr="u@example.com", from_name="Anna", to_addr="bob@x.org", to_name="",
                              subject="An idea", text="Hello Bob, an idea.", message_id="<first@us>")
        await messages.insert_outbound(conn, user_id=user, thread_id=thread, transport="sandbox", msg=out,
                                       sent=SentMessage("p1", "t", "<first@us>"), author="assistant")
        await messages.insert_inbound(conn, user_id=user, thread_id=thread, transport="sandbox",
                                      msg=_reply("What does it cost?", quoted))
        await messages.insert_inbound(conn, user_id=user, thread_id=thread, transport="sandbox",
                                      msg=_reply("Thanks.", "Thanks."))
        await conn.commit()
        listed = await messages.list_for_thread(conn, user_id=user, thread_id=thread)
        history = await export.history(conn, user_id=user, thread_id=thread)
        unread = await messages.unprocessed_inbound(conn, thread_id=thread)
        last_out = await messages.last_outbound(conn, thread_id=thread)
        last = await messages.last_message(conn, thread_id=thread)
    stored = query(database_url, "SELECT text, full_text FROM messages ORDER BY at, id")
    assert [r["full_text"] for r in stored] == ["", quoted, ""], "full_text is kept only when it says more"
    whole = ["Hello Bob, an idea.", quoted, "Thanks."]
    assert [m["full_text"] for m in listed] == whole
    assert [m["full_text"] for m in history["messages"]] == whole
    assert [m["full_text"] for m in unread] == whole[1:]
    assert last_out is not None and last_out["full_text"] == whole[0]
    assert last is not None and last["full_text"] == "Thanks."


async def test_the_storage_migration_compacts_existing_mail_and_drops_unread_indexes(empty_database_url: str,
                                                                                  tmp_path: Path) -> None:
    url = empty_database_url
    files = db.migration_files()
    for _, _, path in files[:10]:
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    await db.apply_migrations(url, tmp_path)  # the schema before 011
    user, thread = _thread(url)
    for text, full in (("Hello.", "Hello."), ("Yes.", "Yes.\n> Hello.")):
        query(url, "INSERT INTO messages (user_id, thread_id, direction, transport, provider_message_id, from_addr,"
                   " to_addr, text, full_text) VALUES (%s, %s, 'in', 'sandbox', %s, 'a@x', 'b@x', %s, %s)",
              (user, thread, uuid.uuid4().hex, text, full))
    upto_011 = tmp_path / "upto_011"
    upto_011.mkdir()
    for _, _, path in files[:11]:  # later migrations are not this test's
        (upto_011 / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    assert await db.apply_migrations(url, upto_011) == [11]
    assert [r["full_text"] for r in query(url, "SELECT full_text FROM messages ORDER BY text")] == ["", "Yes.\n> Hello."]
    indexes = {r["indexname"] for r in query(url, "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}
    assert {"events_decision_at_idx", "events_user_level_idx", "sandbox_mail_sent_idx", "checkpoints_pkey",
            "checkpoint_blobs_pkey", "checkpoint_writes_pkey"} <= indexes
    assert not {"events_user_kind_at_idx", "sandbox_mail_message_id_idx", "checkpoints_thread_id_idx",
                "checkpoint_blobs_thread_id_idx", "checkpoint_writes_thread_id_idx"} & indexes
