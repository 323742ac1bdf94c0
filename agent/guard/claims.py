"""The persona's never-say list and unbacked commercial claims (money, percentages, discounts, guarantees, deadlines).

Never-say: `forbidden` is split into items (lines, bullets, semicolons; commas when every part is a short
phrase), lead-ins such as "never promise" / "не обещать" are dropped, and an item matches when its stems
(text.stems) appear in order in the draft, at most text.GAP tokens apart. Claims: every money amount,
percentage, discount, guarantee or deadline in the draft must also appear (same stems, contiguous) in the
knowledge notes.
"""

from __future__ import annotations

import re
from functools import lru_cache

from agent.guard import text as t

_SPLIT = re.compile(r"[\n;]+|\s[•·–—]\s+|\s-\s+")
_BULLET = re.compile(r"^\s*(?:[•·*–—-]|\d+[.)])\s+")
_LEAD_IN = (
    re.compile(r"^(?:(?:never|do not|don't|dont|no|avoid|not|please don't)\s+)?"
               r"(?:(?:say|promise|mention|offer|use|give|claim|discuss|talk about|suggest|name|quote|compare|make)"
               r"\s+)?(?:(?:any|anything about|about)\s+)?", re.IGNORECASE),
    re.compile(r"^(?:(?:никогда|нельзя|не надо|без)\s+)?(?:не\s+)?"
               r"(?:(?:говорить|обещать|упоминать|предлагать|называть|давать|сравнивать|обсуждать|говори|обещай|"
               r"упоминай)\s+)?(?:(?:про|о|об|никаких|никакие)\s+)?", re.IGNORECASE),
)
_STOP = frozenset((
    "a", "an", "the", "of", "to", "and", "or", "our", "any", "your", "we", "us", "for", "in", "on", "at", "with",
    "about", "is", "are", "be", "никогда", "и", "или", "в", "на", "о", "об", "про", "с", "к", "по", "для", "наш",
    "наши", "наших", "ваш", "какие-либо", "любые", "любых",
))
_DAYS_EN = r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|tomorrow|tonight|" \
    r"(?:the )?end of (?:the )?(?:day|week|month|quarter))"
_DAYS_RU = r"(?:понедельника|вторника|среды|четверга|пятницы|субботы|воскресенья|завтра|" \
    r"конца (?:дня|недели|месяца|квартала))"
_CLAIM_PARTS = (
    r"[$€£₽¥]\s?\d[\d\s.,]*(?:\s?(?:k|m|тыс\.?|млн))?",
    (r"\d[\d\s.,]*\s?(?:k\b|тыс\.?\s?|млн\.?\s?)?"
    r"(?:[$€£₽¥]|usd\b|eur\b|rub\b|руб\w*\.?|долл\w*|евро\b|dollars?\b|euros?\b)"),
    r"\d+(?:[.,]\d+)?\s?(?:%|percent\b|per cent\b|процент\w*)",
    (r"\b(?:discount\w*|coupon\w*|promo code|money[- ]back|refund\w*|free of charge|guarantee\w*|"
    r"warrant(?:y|ies|ed)|limited[- ]time|last chance|act now|today only|offer (?:ends|expires)|deadline)\b"),
    rf"\b(?:by|before|until|till) {_DAYS_EN}\b",
    (r"(?:скидк\w*|промокод\w*|купон\w*|бесплатно\b|возврат\w* денег|гарант\w*|"
    r"ограниченн\w* (?:по времени|предложени\w*|срок\w*)|последний шанс|только сегодня|успейте|дедлайн\w*)"),
    rf"(?<!\w)(?:до|к) {_DAYS_RU}",
)
_CLAIMS = re.compile("|".join(f"(?:{part})" for part in _CLAIM_PARTS), re.IGNORECASE)


@lru_cache(maxsize=256)
def forbidden_items(forbidden: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The never-say list as (item as written, its stems without stop words), split and cleaned."""
    items: list[tuple[str, tuple[str, ...]]] = []
    for chunk in _SPLIT.split(forbidden):
        parts = [p for p in chunk.split(",") if p.strip()]
        if len(parts) > 1 and not all(len(p.split()) <= 4 for p in parts):
            parts = [chunk]
        for part in parts:
            label = _BULLET.sub("", part).strip(" \t.:!\"'«»*")
            core = label
            for lead_in in _LEAD_IN:
                core = lead_in.sub("", core, count=1)
            stems = tuple(t.stem(w) for w in t.tokens(core) if w not in _STOP)
            if stems and sum(len(s) for s in stems) >= 2:
                items.append((label, stems))
    return tuple(items)


def never_said(draft: str, forbidden: str) -> list[str]:
    """The never-say items the draft contains."""
    haystack = t.stems(draft)
    return [label for label, stems in forbidden_items(forbidden) if t.find_phrase(haystack, stems) is not None]


def unbacked_claims(draft: str, knowledge: str) -> list[str]:
    """The money amounts, percentages, discounts, guarantees and deadlines of the draft not in the knowledge notes."""
    known = t.stems(knowledge)
    found: list[str] = []
    for match in _CLAIMS.finditer(draft):
        said = match.group(0).strip(" .,")
        if not t.contains_run(known, t.stems(said)) and said not in found:
            found.append(said)
    return found
