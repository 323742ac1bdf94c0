"""The draft guard on a table of good and bad drafts: each check fails where it should and only there."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from agent.guard import (
    CHECK_NAMES,
    GuardContext,
    GuardDraft,
    check_draft,
    explain,
    prompt_fragments,
)
from agent.guard.claims import forbidden_items
from agent.guard.contacts import normal_link

SIG_EN = "Anna Petrova\nFounder, Acme\nacme.io"
EN = GuardContext(
    call_to_action="Book a 20-minute call: https://cal.acme.io/anna/demo",
    knowledge="We integrate with HubSpot and Pipedrive. Pricing starts at $49/month per seat. "
              "Support: help@acme.io, +1 (415) 555-0134.",
    signature=SIG_EN,
    forbidden="Never promise discounts\n- don't mention competitors\n- free trials; custom integrations",
    thread_texts=("Send details to my assistant: kate@beta.example, or see beta.example/team",),
    expected_language="en",
    leak_fragments=("Honest: never invent facts, prices, customers or meetings; never claim to be human if asked",),
)
GOOD_EN = ("Hi Maria,\n\nI saw that Beta Corp is hiring SDRs. Acme drafts first emails from your own Gmail, so your "
           "team spends its time on replies instead of blank pages.\n\nWould a short call help? "
           "https://cal.acme.io/anna/demo\n\n")

SIG_RU = "Анна Петрова\nОснователь, Акме\nacme.ru"
RU = GuardContext(
    call_to_action="Запишитесь на звонок: https://cal.acme.ru/anna",
    knowledge="Работаем с amoCRM и Битрикс24. Тариф от 3 900 ₽ в месяц за пользователя. Телефон: +7 495 123-45-67.",
    signature=SIG_RU,
    forbidden="Не обещать скидки; не упоминать конкурентов; бесплатный пробный период",
    thread_texts=("Пишите моему коллеге: oleg@beta.example",),
    expected_language="ru",
)
GOOD_RU = ("Здравствуйте, Мария!\n\nУвидела, что «Бета» расширяет отдел продаж. Акме пишет первые письма из вашего "
           "собственного Gmail, и команда тратит время на ответы, а не на пустой лист.\n\nУдобно ли созвониться на "
           "двадцать минут? https://cal.acme.ru/anna\n\n")

NO_LINK_EN = GOOD_EN.split("https://")[0]
NO_LINK_RU = GOOD_RU.split("https://")[0]


def en(body: str = GOOD_EN, sig: str = SIG_EN) -> str:
    return body + sig


def ru(body: str = GOOD_RU, sig: str = SIG_RU) -> str:
    return body + sig


CASES = [
    # (id, context, kind, subject, text, checks expected to fail)
    ("en-good", EN, "first", "Replies instead of blank pages", en(), set()),
    ("ru-good", RU, "first", "Ответы вместо пустого листа", ru(), set()),
    ("en-good-reply", EN, "reply", "", en("Hi Maria,\n\nThanks for asking. We integrate with HubSpot and pricing "
                                          "starts at $49/month per seat. Happy to send details to kate@beta.example "
                                          "or call you at +1 415 555 0134 (our support line).\n\n"), set()),
    ("ru-good-reply", RU, "reply", "", ru("Мария, спасибо за вопрос. Тариф от 3 900 ₽ в месяц за пользователя, "
                                          "подробности отправлю Олегу на oleg@beta.example. Телефон для связи: "
                                          "8 (495) 123 45 67.\n\n"), set()),
    ("en-link-repeat-normalised", EN, "first", "", en(GOOD_EN.replace("https://cal.acme.io/anna/demo",
                                                                     "www.cal.acme.io/anna/demo/.")), set()),
    ("en-home-of-given-link", EN, "first", "", en(GOOD_EN + "More at acme.io.\n\n"), set()),
    ("en-your-name-in-prose", EN, "first", "", en(GOOD_EN.replace("I saw", "I got your name from Tom and saw")),
     set()),
    ("en-good-everyday-words", EN, "first", "", en(GOOD_EN + "By the way, we rebuilt our ASP.NET backend in 2025, "
                                                               "and your 20-minute call could be Thursday at 3pm.\n\n"),
     set()),
    ("en-good-crlf", EN, "first", "", (GOOD_EN + SIG_EN).replace("\n", "\r\n"), set()),
    ("ru-good-everyday-words", RU, "first", "", ru(GOOD_RU + "Кстати, созвон можно провести в четверг в 15:00, "
                                                             "это займёт 20 минут.\n\n"), set()),
    # The six bad first emails from issue 9.
    ("issue-placeholders", EN, "first", "", en(GOOD_EN.replace("Maria", "[First Name]").replace("Beta Corp",
                                                                                             "{company}")),
     {"placeholders"}),
    ("issue-your-name", EN, "first", "", en(GOOD_EN + "Best,\n[Your Name]\n\n"), {"placeholders"}),
    ("issue-bitly", EN, "first", "", en(GOOD_EN.replace("https://cal.acme.io/anna/demo", "https://bit.ly/3xYzQ")),
     {"contacts"}),
    ("issue-discount", EN, "first", "", en(GOOD_EN.replace("Would a short call help?",
                                                            "We guarantee a 50% discount. Would a short call help?")),
     {"never_say", "claims"}),
    ("issue-empty", EN, "first", "", en(""), {"length"}),
    ("issue-essay", EN, "first", "", en("Hi Maria, " + "this is a very long story about our product. " * 230),
     {"length"}),
    ("issue-rival-address", EN, "first", "", en(GOOD_EN.replace(
        "Would a short call help?", "Write to my personal address deals@rival.example instead.")), {"contacts"}),
    # English, one check at a time.
    ("en-braces", EN, "first", "About {{company_name}}", en(), {"placeholders"}),
    ("en-angle", EN, "first", "", en(GOOD_EN.replace("Maria", "<NAME>")), {"placeholders"}),
    ("en-insert", EN, "first", "", en(GOOD_EN + "INSERT CASE STUDY HERE.\n\n"), {"placeholders"}),
    ("en-lorem", EN, "first", "", en(GOOD_EN + "Lorem ipsum dolor sit amet.\n\n"), {"placeholders"}),
    ("en-phone", EN, "first", "", en(GOOD_EN + "Or call me on +44 20 7946 0958.\n\n"), {"contacts"}),
    ("en-rival-link", EN, "first", "", en(GOOD_EN + "See http://rival.example/pricing\n\n"), {"contacts"}),
    ("en-never-say-inflected", EN, "first", "", en(GOOD_EN + "Unlike our Competitors, we care.\n\n"),
     {"never_say"}),
    ("en-never-say-short-item", replace(EN, forbidden="never mention AI"), "first", "",
     en(GOOD_EN + "Our AI writes it.\n\n"), {"never_say"}),
    ("en-never-say-phrase", EN, "first", "", en(GOOD_EN + "You can start with a FREE trial.\n\n"), {"never_say"}),
    ("en-claim-money", EN, "first", "", en(GOOD_EN + "It pays back $200 a week.\n\n"), {"claims"}),
    ("en-claim-deadline", EN, "first", "", en(GOOD_EN + "Reply by Friday, it is a limited time offer.\n\n"),
     {"claims"}),
    ("en-claim-guarantee", EN, "first", "", en(GOOD_EN + "Results are guaranteed.\n\n"), {"claims"}),
    ("en-follow-up-too-long", EN, "follow_up", "", en("Hi Maria, just following up on my last note. " * 18),
     {"length"}),
    ("en-one-word", EN, "reply", "", en("Thanks!\n\n"), {"length"}),
    ("en-wrong-language", EN, "first", "", en(NO_LINK_RU), {"language"}),
    ("en-untrusted-marker", EN, "reply", "", en(GOOD_EN + "As your </UNTRUSTED_EMAIL> said, yes.\n\n"), {"leaks"}),
    ("en-untrusted-open-tag", EN, "reply", "", en(GOOD_EN + "<UNTRUSTED_EMAIL>\n\n"), {"leaks"}),
    ("en-rule-leak", EN, "reply", "", en(GOOD_EN + "Honest: never invent facts, prices, customers or meetings; "
                                                   "never claim to be human if asked directly.\n\n"), {"leaks"}),
    ("en-heading", EN, "first", "", en("## Why Acme\n\n" + GOOD_EN), {"markdown"}),
    ("en-bold", EN, "first", "", en(GOOD_EN.replace("short call", "**short call**")), {"markdown"}),
    ("en-star-bullets", EN, "first", "", en(GOOD_EN + "* faster\n* cheaper\n\n"), {"markdown"}),
    ("en-md-link", EN, "first", "", en(GOOD_EN.replace("https://cal.acme.io/anna/demo",
                                                        "[book here](https://cal.acme.io/anna/demo)")), {"markdown"}),
    ("en-code-fence", EN, "first", "", en(GOOD_EN + "```\nhello\n```\n\n"), {"markdown"}),
    ("en-no-signature", EN, "first", "", GOOD_EN, {"signature"}),
    ("en-two-signatures", EN, "first", "", en(GOOD_EN + SIG_EN + "\n\n"), {"signature"}),
    # Russian, one check at a time.
    ("ru-placeholder-name", RU, "first", "", ru(GOOD_RU.replace("Мария", "[Имя]")), {"placeholders"}),
    ("ru-placeholder-company", RU, "first", "", ru(GOOD_RU.replace("«Бета»", "{компания}")), {"placeholders"}),
    ("ru-percent-variable", RU, "first", "", ru(GOOD_RU.replace("Мария", "%Имя%")), {"placeholders"}),
    ("ru-your-name-quoted", RU, "first", "", ru(GOOD_RU + "С уважением, «Ваше имя»\n\n"), {"placeholders"}),
    ("ru-insert", RU, "first", "", ru(GOOD_RU + "ВСТАВИТЬ КЕЙС.\n\n"), {"placeholders"}),
    ("ru-bitly", RU, "first", "", ru(GOOD_RU.replace("https://cal.acme.ru/anna", "https://bit.ly/abc")),
     {"contacts"}),
    ("ru-rival-address", RU, "first", "", ru(GOOD_RU + "Лучше пишите на deals@rival.example.\n\n"), {"contacts"}),
    ("ru-never-say-inflected", RU, "first", "", ru(GOOD_RU + "Мы лучше, чем наши конкуренты.\n\n"), {"never_say"}),
    ("ru-never-say-phrase", RU, "first", "", ru(GOOD_RU + "Есть бесплатный пробный период.\n\n"), {"never_say"}),
    ("ru-discount", RU, "first", "", ru(GOOD_RU + "Гарантируем скидку 50%.\n\n"), {"never_say", "claims"}),
    ("ru-claim-money", RU, "first", "", ru(GOOD_RU + "Это экономит 200 ₽ на каждом письме.\n\n"), {"claims"}),
    ("ru-claim-deadline", RU, "first", "", ru(GOOD_RU + "Ответьте до пятницы.\n\n"), {"claims"}),
    ("ru-empty", RU, "first", "", ru(""), {"length"}),
    ("ru-too-long", RU, "reply", "", ru("Мария, расскажу подробнее о продукте и команде. " * 40), {"length"}),
    ("ru-wrong-language", RU, "first", "", ru(NO_LINK_EN), {"language"}),
    ("ru-untrusted-marker", RU, "reply", "", ru(GOOD_RU + "Как сказано в untrusted email, да.\n\n"), {"leaks"}),
    ("ru-prompt-marker", RU, "reply", "", ru(GOOD_RU + "=== user ===\n\n"), {"leaks"}),
    ("ru-bold", RU, "first", "", ru(GOOD_RU.replace("на двадцать минут", "на **двадцать минут**")), {"markdown"}),
    ("ru-heading", RU, "first", "", ru("# Предложение\n\n" + GOOD_RU), {"markdown"}),
    ("ru-two-signatures", RU, "first", "", ru(GOOD_RU + SIG_RU + "\n\n"), {"signature"}),
]


@pytest.mark.parametrize(("ctx", "kind", "subject", "text", "expected"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_check_fails_where_it_should_and_only_there(ctx, kind, subject, text, expected):
    verdicts = check_draft(GuardDraft(kind=kind, text=text, subject=subject), ctx)
    assert [v.check for v in verdicts] == list(CHECK_NAMES)
    failed = {v.check for v in verdicts if not v.ok}
    assert failed == expected, explain(verdicts)
    assert all(v.detail for v in verdicts)


def test_every_check_has_a_failing_case_in_both_languages():
    for prefix in ("en-", "ru-"):
        failing = set().union(*(c[5] for c in CASES if c[0].startswith((prefix, "issue-")) and c[1] is
                                (EN if prefix == "en-" else RU)))
        assert failing == set(CHECK_NAMES), set(CHECK_NAMES) - failing


def test_explain_names_the_failed_checks_for_the_model():
    verdicts = check_draft(GuardDraft("first", en(GOOD_EN.replace("Maria", "[First Name]"))), EN)
    assert explain(verdicts).splitlines() == [('- placeholders: Template leftovers: a bracketed placeholder: '
                                              '"[First Name]".')]


def test_language_is_skipped_when_none_is_expected_or_text_is_too_short():
    loose = GuardContext(signature=SIG_EN)
    assert check_draft(GuardDraft("reply", en(GOOD_RU)), loose)[5].ok
    short = GuardContext(expected_language="ru", min_words=1)
    verdict = check_draft(GuardDraft("reply", "Ok, thanks"), short)[5]
    assert verdict.ok and "short" in verdict.detail


def test_per_kind_limits_come_from_the_context():
    ctx = GuardContext(max_chars={"first": 100})
    verdict = check_draft(GuardDraft("first", "Hi Maria, " + "we write emails for you. " * 5), ctx)[4]
    assert not verdict.ok and "100" in verdict.detail
    assert check_draft(GuardDraft("reply", "Hi Maria, " + "we write emails for you. " * 5), ctx)[4].ok


def test_claims_backed_by_knowledge_pass():
    ctx = GuardContext(knowledge="Non-profits get a 20% discount. Every plan has a 30-day money-back guarantee.")
    text = "Hi Maria, as a non-profit you get a 20% discount, and there is a 30-day money-back guarantee."
    assert check_draft(GuardDraft("reply", text), ctx)[3].ok
    assert not check_draft(GuardDraft("reply", text.replace("20%", "25%")), ctx)[3].ok


def test_the_user_own_offer_backs_its_terms_and_links():
    ctx = GuardContext(offer="Team plan: $39 per seat for the first year, see acme.io/team")
    text = "Hi Maria, our team plan is $39 per seat for the first year: acme.io/team. Worth a look?"
    assert all(v.ok for v in check_draft(GuardDraft("reply", text), ctx))
    assert not check_draft(GuardDraft("reply", text), GuardContext())[3].ok


def test_forbidden_list_is_split_into_items():
    items = [label for label, _ in forbidden_items("Never promise discounts, free trials, refunds\n"
                                                   "* do not compare us with Rival, because it sounds petty\n"
                                                   "1. не обещать сроки внедрения")]
    assert items == ["Never promise discounts", "free trials", "refunds",
                     "do not compare us with Rival, because it sounds petty", "не обещать сроки внедрения"]


def test_russian_never_say_matches_other_inflections():
    ctx = GuardContext(forbidden="не обещать сроки внедрения")
    assert not check_draft(GuardDraft("reply", "Мария, внедрим за неделю, сроков внедрения не бойтесь."),
                           ctx)[2].ok
    assert check_draft(GuardDraft("reply", "Мария, расскажу о внедрении на звонке, хорошо?"), ctx)[2].ok


@pytest.mark.parametrize(("a", "b"), [("https://www.Acme.io/Book/", "acme.io/book"),
                                      ("http://acme.io/book).", "acme.io/book")])
def test_links_are_normalised(a, b):
    assert normal_link(a) == b


def test_prompt_fragments_drop_template_tags():
    fragments = prompt_fragments([("{% include \"_persona.md\" %}\n=== user ===\nWrite the first outreach email, "
                                  "please, {{ p.name }}.\n- Short: a few sentences a busy person reads on a phone.")])
    assert fragments == ("Write the first outreach email, please,",
                         "Short: a few sentences a busy person reads on a phone.")


def test_context_from_any_persona_like_object():
    class Persona:
        call_to_action, knowledge, signature, forbidden, offer = "cta", "facts", "sig", "never", "offer"
        value_proposition = "why"

    ctx = GuardContext.from_persona(Persona(), expected_language="de")
    assert (ctx.call_to_action, ctx.knowledge, ctx.signature, ctx.forbidden, ctx.offer, ctx.expected_language) == \
        ("cta", "facts", "sig", "never", "offer\nwhy", "de")


def test_the_real_prompts_leak_only_when_quoted():
    prompts = sorted((Path(__file__).parents[1] / "prompts").glob("*.md"))
    ctx = replace(EN, leak_fragments=prompt_fragments(p.read_text(encoding="utf-8") for p in prompts))
    assert len(ctx.leak_fragments) > 20
    assert all(v.ok for v in check_draft(GuardDraft("first", en()), ctx))
    leaked = en(GOOD_EN + "Short: a few sentences a busy person reads on a phone. One clear ask.\n\n")
    assert {v.check for v in check_draft(GuardDraft("first", leaked), ctx) if not v.ok} == {"leaks"}
