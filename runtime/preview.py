"""A sample first email for a persona, drafted for a sample recipient; nothing is stored or sent."""

from __future__ import annotations

from dataclasses import dataclass

from agent import prompts
from agent.assistants.models import AssistantFields
from agent.llm import FirstDraft, LanguageModel
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
