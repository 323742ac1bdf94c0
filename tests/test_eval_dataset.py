"""The labelled evaluation data in tests/eval/: replies (intent and route) and first-email briefs."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from agent import decisions as decide
from agent.assistants.models import AssistantFields
from agent.guard import GuardContext, GuardDraft, check_draft, explain, language
from agent.llm import Intent
from agent.rules import precheck

EVAL = Path(__file__).parent / "eval"
ROUTES = {"respond", "close", "wait", "escalate"}
# What agent/decisions.py (the decide node's rules) does with each intent (at full confidence, under the reply limit).
ROUTE_OF = {**{i: "respond" for i in decide.RESPOND}, **{i: "close" for i in decide.CLOSE},
            **{i: "wait" for i in decide.KEEP_WAITING}, **{i: "escalate" for i in decide.ESCALATE}}
HARD_CASES = {"polite_no", "not_now", "referral", "ooo_with_date", "ooo_without_date", "angry",
              "question_answerable", "question_unanswerable", "meeting_time", "calendar_link", "prompt_injection",
              "one_word", "stop", "bounce", "auto_submitted"}
REPLY_FIELDS = {"id": str, "lang": str, "text": str, "intent": str, "route": str}
OPTIONAL_REPLY_FIELDS = {"subject": str, "headers": dict, "tags": list}
PERSONA_FIELDS = {"name", "sender_name", "role", "company", "offer", "value_proposition", "target_audience", "goal",
                  "call_to_action", "tone", "language", "signature", "knowledge", "forbidden"}


def load(name: str) -> list[dict]:
    lines = (EVAL / name).read_text(encoding="utf-8").splitlines()
    assert all(line.strip() for line in lines), f"{name} has blank lines"
    return [json.loads(line) for line in lines]


REPLIES = load("replies.jsonl")
BRIEFS = load("briefs.jsonl")


def test_every_intent_maps_to_a_route_today():
    assert set(ROUTE_OF) == {i.value for i in Intent}


@pytest.mark.parametrize("item", REPLIES, ids=[r["id"] for r in REPLIES])
def test_reply_is_well_formed(item):
    for field, kind in REPLY_FIELDS.items():
        assert isinstance(item.get(field), kind) and item[field].strip(), field
    for field, kind in OPTIONAL_REPLY_FIELDS.items():
        assert field not in item or isinstance(item[field], kind), field
    assert set(item) <= set(REPLY_FIELDS) | set(OPTIONAL_REPLY_FIELDS)
    assert item["intent"] in {i.value for i in Intent}
    assert item["route"] in ROUTES and item["route"] == ROUTE_OF[item["intent"]]
    assert item["id"].startswith(item["lang"] + "-")
    assert set(item.get("tags", [])) <= HARD_CASES
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in item.get("headers", {}).items())


def test_reply_ids_are_unique_and_languages_counted():
    ids = Counter(r["id"] for r in REPLIES)
    assert [i for i, n in ids.items() if n > 1] == []
    langs = Counter(r["lang"] for r in REPLIES)
    assert len(REPLIES) >= 150
    assert langs["en"] >= 60 and langs["ru"] >= 60
    assert sum(n for lang, n in langs.items() if lang not in ("en", "ru")) >= 15
    assert len(set(langs) - {"en", "ru"}) >= 5


def test_every_hard_case_is_present_in_english_and_russian():
    for lang in ("en", "ru"):
        tags = set().union(*(set(r.get("tags", [])) for r in REPLIES if r["lang"] == lang))
        assert tags == HARD_CASES, HARD_CASES - tags


def test_hard_cases_carry_what_makes_them_hard():
    for r in REPLIES:
        tags = set(r.get("tags", []))
        headers = {k.lower(): v.lower() for k, v in r.get("headers", {}).items()}
        if "bounce" in tags:
            assert r["intent"] == "bounce" and "mailer-daemon" in headers["from"]
            assert any(code in r["text"] for code in ("5.1.1", "5.2.2", "550", "permanent error")), r["id"]
        if "auto_submitted" in tags:
            assert headers["auto-submitted"].startswith("auto-"), r["id"]
        if "calendar_link" in tags:
            assert "https://" in r["text"] and r["intent"] == "meeting_request"
        if "prompt_injection" in tags:
            assert r["intent"] == "unclear" and r["route"] == "escalate"
        if "stop" in tags:
            assert r["intent"] == "unsubscribe"
        if "one_word" in tags:
            assert len(r["text"].split()) == 1


def test_labels_agree_with_the_rules_that_decide_without_a_model():
    for r in REPLIES:
        decision = precheck([{"text": r["text"], "auto_reply": None, "bounce": None}], suppressed_reason=None)
        if decision is not None:
            assert decision["intent"] == r["intent"], r["id"]


def test_language_detector_agrees_with_the_labels():
    long = [r for r in REPLIES if len(r["text"]) > 40]
    wrong = [(r["id"], found) for r in long if (found := language.detect(r["text"])) != r["lang"]]
    assert len(long) >= 100
    assert len(wrong) <= 0.1 * len(long), wrong


@pytest.mark.parametrize("brief", BRIEFS, ids=[b["id"] for b in BRIEFS])
def test_brief_is_well_formed(brief):
    assert set(brief) <= {"id", "persona", "recipient", "must", "tags"}
    persona = brief["persona"]
    assert set(persona) == PERSONA_FIELDS
    AssistantFields(**persona)
    recipient = brief["recipient"]
    assert "@" in recipient["email"] and {"name", "company", "context"} <= set(recipient)
    must = brief["must"]
    assert must["offer_terms"] and any(t.lower() in persona["offer"].lower() for t in must["offer_terms"])
    assert must["cta"] in persona["call_to_action"]
    assert must["language"] == language.expected(persona["language"], recipient_language=recipient.get("language"))


def test_brief_ids_are_unique_and_both_languages_are_there():
    assert len(BRIEFS) >= 30 and len({b["id"] for b in BRIEFS}) == len(BRIEFS)
    langs = Counter(b["must"]["language"] for b in BRIEFS)
    assert langs["en"] >= 10 and langs["ru"] >= 10


@pytest.mark.parametrize("brief", BRIEFS, ids=[b["id"] for b in BRIEFS])
def test_a_draft_from_the_persona_own_words_passes_the_guard(brief):
    """The briefs are consistent with the guard: the persona's own offer, call to action and signature pass it."""
    p, r = brief["persona"], brief["recipient"]
    greeting = {"ru": "Здравствуйте", "uk": "Добрий день", "de": "Hallo", "fr": "Bonjour"}.get(
        brief["must"]["language"], "Hi")
    body = f"{greeting}{', ' + r['name'] if r['name'] else ''},\n\n{p['offer']}.\n\n{p['call_to_action']}"
    native = brief["must"]["language"] in ("en", "ru")
    ctx = GuardContext.from_persona(type("P", (), p), expected_language=brief["must"]["language"] if native else None)
    verdicts = check_draft(GuardDraft("first", f"{body}\n\n{p['signature']}", subject=p["company"]), ctx)
    assert all(v.ok for v in verdicts), explain(verdicts)
