"""Drafting policy without the database: the expected language, the retry with the failed checks, the CSV language."""

from __future__ import annotations

from types import SimpleNamespace

from agent import prompts
from agent.assistants.models import AssistantFields
from agent.llm import FirstDraft
from agent.threads import bulk
from graphs.nodes import drafting
from tests.support import PERSONA

BAD = FirstDraft(subject="For [Company]", body="Hi [First Name], we guarantee a 50% discount.")
GOOD = FirstDraft(subject="Online booking", body="Hello Bob, Acme lets your patients book online. Would a demo help?")


class Queued:
    """A model that answers from a list and keeps the prompts it was given."""

    name = "queued"

    def __init__(self, *answers: FirstDraft) -> None:
        self.answers, self.prompts = list(answers), []

    async def structured(self, schema, system: str, user: str):
        self.prompts.append(user)
        return self.answers.pop(0)


def _persona(**fields) -> AssistantFields:
    return AssistantFields(**{**PERSONA, **fields})


def _write(llm: Queued, persona: AssistantFields):
    fields = {"email": "bob@example.com", "name": "Bob", "company": "Clinic", "context": ""}
    ctx = drafting.guard_context(persona, recipient_fields=fields, their_texts=[], expected="en")
    return drafting.write_checked(llm, kind="first", persona=persona, subject="", ctx=ctx,
                                  variables={"r": fields, "conversation": [], "feedback": None, "examples": [],
                                             "write_in": "English"})


async def test_a_refused_draft_is_written_once_more_with_the_failed_checks() -> None:
    llm = Queued(BAD, GOOD)
    attempts = await _write(llm, _persona())
    assert [a.ok for a in attempts] == [False, True] and attempts[-1].subject == "Online booking"
    assert "Your previous draft was refused" not in llm.prompts[0]
    assert "- placeholders:" in llm.prompts[1] and "- claims:" in llm.prompts[1] and BAD.body in llm.prompts[1]


async def test_two_refusals_stop_there() -> None:
    llm = Queued(BAD, BAD, GOOD)
    attempts = await _write(llm, _persona())
    assert [a.ok for a in attempts] == [False, False] and len(llm.answers) == 1, "never a third attempt"
    assert attempts[-1].text.endswith("Anna\nAcme"), "the signature is appended by code"


def test_the_expected_language() -> None:
    match, russian = SimpleNamespace(language="match"), SimpleNamespace(language="Russian")
    assert drafting.expected_language(russian, latest_inbound={"language": "en", "text": "Hi"},
                                      recipient_language="de") == "ru"
    assert drafting.expected_language(match, latest_inbound=None, recipient_language="de") == "de"
    assert drafting.expected_language(match, latest_inbound=None, recipient_language="German") == "de"
    assert drafting.expected_language(match, latest_inbound=None, recipient_language=None) == "en"
    assert drafting.expected_language(match, latest_inbound={"language": "ru", "text": "..."},
                                      recipient_language="de") == "ru"
    detected = drafting.expected_language(match, latest_inbound={"language": None, "text":
                                          "Guten Tag, das klingt interessant. Was kostet es für zehn Leute?"},
                                          recipient_language=None)
    assert detected == "de"
    assert drafting.language_name("ru") == "Russian" and drafting.language_name(None) is None


def test_the_prompts_say_which_language_and_show_the_users_rewrites() -> None:
    persona = _persona(language="match")
    system, user = prompts.render("first_message", p=persona, r={"name": "", "company": "", "context": ""},
                                  feedback=None, write_in="German",
                                  examples=[{"kind": "edit", "original": "Dear Sir", "revised": "Hey Bob"}])
    assert "write the whole email in German (the recipient's language)" in system
    assert "How this user rewrites drafts" in user and "Hey Bob" in user
    system, user = prompts.render("first_message", p=persona, r={"name": "", "company": "", "context": ""},
                                  feedback=None)
    assert "write in the language the recipient uses" in system and "rewrites" not in user


def test_every_prompt_starts_with_a_note_on_what_it_must_achieve() -> None:
    for path in sorted(prompts.PROMPTS_DIR.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        assert text.startswith("{#") and len(text.split("#}", 1)[0]) > 40, path.name


def test_a_language_column_sets_the_recipients_language() -> None:
    rows = [{"email": "a@example.com", "language": "ru", "note": "met at a fair"}, {"email": "b@example.com"}]
    valid, errors = bulk.to_thread_creates("00000000-0000-0000-0000-000000000001", rows)
    assert errors == []
    assert [d.recipient_language for _n, d in valid] == ["ru", None]
    assert "language" not in valid[0][1].context, "the language is a field, not context"
    assert bulk.guess_mapping(["E-mail", "Name", "Language"])["language"] == "Language"
    assert bulk.guess_mapping(["Почта", "Язык"])["language"] == "Язык"
