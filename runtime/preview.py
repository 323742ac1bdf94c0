"""A persona's sample first email and whole sequence, drafted for a sample recipient; nothing is stored or sent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from agent import prompts
from agent.assistants.models import AssistantFields
from agent.llm import FirstDraft, LanguageModel, ReplyDraft
from agent.mail.outbox import reply_subject
from agent.sending.planner import Window
from graphs.nodes.common import with_signature

SAMPLE_RECIPIENT = {"email": "jordan@northwind.example", "name": "Jordan Lee", "company": "Northwind Clinic",
                    "context": "Runs a small clinic with three doctors; books appointments by phone."}


@dataclass
class Preview:
    """What the first email would look like."""

    subject: str
    text: str
    model: str


async def first_email(llm: LanguageModel, persona: AssistantFields, recipient: dict[str, str]) -> Preview:
    """Draft the first email as the thread would (same prompt, same signature); ModelUnavailable when no model."""
    sample = {**SAMPLE_RECIPIENT, **{k: v for k, v in recipient.items() if k in SAMPLE_RECIPIENT}}
    system, user = prompts.render("first_message", p=persona, r=sample, feedback=None)
    draft = await llm.structured(FirstDraft, system, user)
    return Preview(subject=draft.subject.strip()[:300], text=with_signature(draft.body, persona), model=llm.name)


@dataclass
class Step:
    """One email of the sequence and when it would go."""

    number: int
    """0 for the first email, then 1, 2, … for the follow-ups."""
    at: datetime
    """When it would go, in the persona's time zone."""
    day: int
    """The day of the sequence it goes on (the first email's is day 1)."""
    subject: str
    text: str


def send_times(persona: AssistantFields, *, now: datetime) -> list[datetime]:
    """When the first email and each follow-up would go: the window's next opening, then `follow_up_days` of silence
    after each send and the next opening again (the graph's wait, then the send queue; the daily cap aside)."""
    window = Window(frozenset(persona.send_days), persona.send_start, persona.send_end, ZoneInfo(persona.timezone))
    times = [window.next_open(now)]
    for _ in range(persona.follow_up_count):
        times.append(window.next_open(times[-1] + timedelta(days=persona.follow_up_days)))
    return [t.astimezone(window.tz) for t in times]


async def sequence(llm: LanguageModel, persona: AssistantFields, recipient: dict[str, str], *,
                   now: datetime) -> list[Step]:
    """The first email and each follow-up for a sample recipient (no reply comes), drafted with the thread's prompts,
    each on the day it would go; nothing is stored or sent. ModelUnavailable when no model."""
    sample = {**SAMPLE_RECIPIENT, **{k: v for k, v in recipient.items() if k in SAMPLE_RECIPIENT}}
    times = send_times(persona, now=now)
    first = await first_email(llm, persona, recipient)
    steps = [Step(0, times[0], 1, first.subject, first.text)]
    subject = reply_subject(first.subject)
    for number, at in enumerate(times[1:], start=1):
        conversation = [{"direction": "out", "text": s.text, "at": s.at.strftime("%Y-%m-%d %H:%M")} for s in steps]
        system, user = prompts.render("follow_up", p=persona, r=sample, conversation=conversation, feedback=None,
                                      follow_up_number=number, follow_up_total=persona.follow_up_count)
        draft = await llm.structured(ReplyDraft, system, user)
        day = (at.date() - times[0].date()).days + 1
        steps.append(Step(number, at, day, subject, with_signature(draft.body, persona)))
    return steps
