"""Drafting through the guard: write, check, write once more with the failed checks, else hand over.

`write_checked` is the whole policy and needs no database (the eval runner calls it too); `compose` is what the
three drafting nodes run: it gathers the thread, the persona's style examples and the expected language, records
every verdict as a `guard` event, and routes a clean draft to review and a twice-refused one to the human.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from langgraph.runtime import Runtime
from langgraph.types import Command

from agent import prompts
from agent.assistants.models import Assistant
from agent.edits import service as edits
from agent.guard import GuardContext, GuardDraft, Verdict, check_draft, explain, failures, language, prompt_fragments
from agent.llm import FirstDraft, ReplyDraft
from agent.mail.outbox import reply_subject
from agent.threads import messages
from agent.threads.models import ThreadRow
from graphs.context import Context
from graphs.nodes.common import Entry, connect, load, recipient, record_all, record_later, take_ahead, with_signature
from graphs.state import ThreadState

Composed = Literal["review", "escalate"]
PROMPT = {"first": "first_message", "reply": "reply", "follow_up": "follow_up"}
SCHEMA = {"first": FirstDraft, "reply": ReplyDraft, "follow_up": ReplyDraft}
ATTEMPTS = 2
"""A refused draft is written once more; the second refusal hands the thread to the human."""


@dataclass(frozen=True)
class Attempt:
    """One draft the model wrote and what the guard said of it."""

    subject: str
    text: str
    verdicts: list[Verdict]

    @property
    def ok(self) -> bool:
        """Every check passed."""
        return not failures(self.verdicts)


def verdict_list(verdicts: Sequence[Verdict]) -> list[dict[str, Any]]:
    """Verdicts as JSON (for events and the pending draft)."""
    return [v._asdict() for v in verdicts]


@lru_cache(maxsize=1)
def leak_fragments() -> tuple[str, ...]:
    """Sentences of our prompt templates that must never reach a recipient (read once per process)."""
    return prompt_fragments(p.read_text(encoding="utf-8") for p in sorted(prompts.PROMPTS_DIR.glob("*.md")))


def language_name(code: str | None) -> str | None:
    """'Russian' for 'ru' (None when unknown), for the prompt's language line."""
    if not code:
        return None
    from lingua import IsoCode639_1, Language

    try:
        return Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper())).name.title()
    except AttributeError:
        return None


def expected_language(persona: Any, *, latest_inbound: dict[str, Any] | None,
                      recipient_language: str | None) -> str | None:
    """The persona's fixed language, else the latest reply's stored (or detected) one, else the recipient's."""
    fixed = language.code_for(getattr(persona, "language", None))
    if fixed or latest_inbound is None:
        return fixed or language.expected(None, recipient_language=recipient_language)
    return latest_inbound.get("language") or language.expected(None, latest_inbound=latest_inbound.get("text") or "")


def guard_context(persona: Any, *, recipient_fields: dict[str, str], their_texts: Sequence[str],
                  expected: str | None) -> GuardContext:
    """What a draft may draw on: the persona, the recipient's own messages and what the user said about them."""
    return GuardContext.from_persona(
        persona, thread_texts=tuple(their_texts), expected_language=expected, leak_fragments=leak_fragments(),
        extra_sources=tuple(v for v in recipient_fields.values() if v))


async def write_checked(llm: Any, *, kind: str, persona: Any, subject: str, variables: dict[str, Any],
                        ctx: GuardContext,
                        checked: Callable[[int, Attempt], Awaitable[None]] | None = None) -> list[Attempt]:
    """Write a draft and check it; on a refusal write once more, told which checks failed. Returns the attempts.

    `checked(number, attempt)` runs after each check, before the next model call (so no verdict is lost when the
    retry fails).
    """
    attempts: list[Attempt] = []
    refused: dict[str, str | None] = {"guard_feedback": None, "refused_draft": None}
    for _ in range(ATTEMPTS):
        system, user = prompts.render(PROMPT[kind], p=persona, **variables, **refused)
        answer = await llm.structured(SCHEMA[kind], system, user)
        title = answer.subject.strip()[:300] if kind == "first" else subject
        text = with_signature(answer.body, persona)
        verdicts = check_draft(GuardDraft(kind=kind, text=text, subject=title if kind == "first" else ""), ctx)
        attempts.append(Attempt(title, text, verdicts))
        if checked is not None:
            await checked(len(attempts), attempts[-1])
        if not failures(verdicts):
            break
        refused = {"guard_feedback": explain(verdicts), "refused_draft": text}
    return attempts


async def compose(runtime: Runtime[Context], state: ThreadState, *, kind: str, summary: str,
                  variables: Callable[[Assistant], dict[str, Any]]) -> Command[Composed]:
    """Draft `kind` for the thread through the guard: a clean draft goes to review, a twice-refused one to you."""
    thread, persona = await load(runtime, state)
    rows = take_ahead(f"conversation:{thread.id}")  # read by decide in this run, when it routed here
    async with connect(runtime) as conn:
        if rows is None:
            rows = await messages.list_for_thread(conn, user_id=thread.user_id, thread_id=thread.id)
        examples = await edits.latest(conn, assistant_id=persona.id)
    theirs, expected, fields = _thread_facts(thread, persona, rows)
    conversation = [{"direction": m["direction"], "text": m["text"], "at": m["at"].strftime("%Y-%m-%d %H:%M")}
                    for m in rows]
    base = {"r": fields, "conversation": conversation, "feedback": state.get("feedback"), "examples": examples,
            "write_in": language_name(expected)}
    model = runtime.context.llm.name

    held: list[Entry] = []

    async def checked(number: int, attempt: Attempt) -> None:
        entry = verdicts_entry(attempt, kind=kind, number=number, model=model, blocked=not attempt.ok and number == ATTEMPTS)
        if attempt.ok or number == ATTEMPTS:
            held.append(entry)  # no model call follows: recorded with the drafted event, in one transaction
        else:
            await record_all(runtime, state, [entry])  # before the next model call, so no verdict is lost

    attempts = await write_checked(
        runtime.context.llm, kind=kind, persona=persona, subject=reply_subject(thread.subject or ""),
        variables={**base, **variables(persona)},
        ctx=guard_context(persona, recipient_fields=fields, their_texts=theirs, expected=expected), checked=checked)
    # with the next transaction (the send's, the wait's or the run's exit checkpoint): no node of the run reads them
    await record_later(runtime, state, [*held, ("drafted", summary, {
        "model": model, "detail": {"kind": kind, "feedback": state.get("feedback"), "attempts": len(attempts),
                                   "examples": len(examples), "language": expected}})])
    last = attempts[-1]
    if not last.ok:
        reasons = "; ".join(f"{v.check}: {v.detail}" for v in failures(last.verdicts))
        return Command(goto="escalate", update={"draft": None, "feedback": None, "escalation": (
            f"The assistant's draft failed the checks twice, so nothing was sent. {reasons}")})
    draft = {"kind": kind, "subject": last.subject, "text": last.text, "author": "assistant",
             "verdicts": verdict_list(last.verdicts), "attempts": len(attempts)}
    return Command(goto="review", update={"draft": draft, "feedback": None})


async def record_verdicts(runtime: Runtime[Context], state: ThreadState, attempt: Attempt, *, kind: str,
                          actor: str = "assistant", dedupe_key: str | None = None) -> None:
    """One `guard` event with every verdict."""
    await record_all(runtime, state, [verdicts_entry(attempt, kind=kind, actor=actor, dedupe_key=dedupe_key)])


def verdicts_entry(attempt: Attempt, *, kind: str, number: int | None = None, model: str | None = None,
                   blocked: bool = False, actor: str = "assistant", dedupe_key: str | None = None) -> Entry:
    """The `guard` event of one attempt; a refused draft's text is kept in it (the human sees it there)."""
    failed = failures(attempt.verdicts)
    who = "Your text" if actor == "user" else "The draft"
    summary = (f"{who} passed every check." if not failed else
               f"{who} {'is sent as you wrote it, with warnings' if actor == 'user' else 'was refused'}: "
               + "; ".join(v.detail for v in failed))
    detail: dict[str, Any] = {"kind": kind, "ok": not failed, "failed": [v.check for v in failed],
                              "verdicts": verdict_list(attempt.verdicts), "blocked": blocked}
    if number is not None:
        detail["attempt"] = number
    if failed:
        detail["draft"] = {"subject": attempt.subject, "text": attempt.text}
    return "guard", summary, {"model": model, "actor": actor, "detail": detail, "dedupe_key": dedupe_key}


def _thread_facts(thread: ThreadRow, persona: Any, rows: Sequence[dict[str, Any]]) -> tuple[
        list[str], str | None, dict[str, str]]:
    """The recipient's own texts, the language a draft must be in, and the recipient fields."""
    theirs = [m for m in rows if m["direction"] == "in" and not m["auto_reply"] and not m["bounce"]]
    expected = expected_language(persona, latest_inbound=theirs[-1] if theirs else None,
                                 recipient_language=thread.recipient_language)
    return [m["text"] or "" for m in theirs], expected, recipient(thread)


async def warn_human(runtime: Runtime[Context], state: ThreadState, *, kind: str, subject: str, text: str,
                     seq: int) -> None:
    """Check text the user wrote (an edit at approval, their own reply) and record the warnings; never blocks."""
    thread, persona = await load(runtime, state)
    async with connect(runtime) as conn:
        rows = await messages.list_for_thread(conn, user_id=thread.user_id, thread_id=thread.id)
    theirs, expected, fields = _thread_facts(thread, persona, rows)
    ctx = guard_context(persona, recipient_fields=fields, their_texts=theirs, expected=expected)
    guard_kind = kind if kind in PROMPT else "reply"
    verdicts = check_draft(GuardDraft(kind=guard_kind, text=text, subject=subject if kind == "first" else ""), ctx)
    await record_verdicts(runtime, state, Attempt(subject, text, verdicts), kind=kind, actor="user",
                          dedupe_key=f"guard-user:{seq}")
