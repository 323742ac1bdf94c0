"""Shared text helpers for the guard: tokens, a light English/Russian stemmer and phrase matching.

Tokens are lower-cased words (Latin or Cyrillic, 'ё' folded to 'е'), numbers (spaces and separators inside a
number removed, so "1 200" and "1,200" are both "1200") and currency signs; words naming a currency are mapped to
its sign ("руб." -> "₽", "dollars" -> "$") so an amount is compared the same however it is written. Words are
stemmed with Snowball (snowballstemmer: English for Latin script, Russian for Cyrillic), built once on first use.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache, lru_cache

_TOKEN = re.compile(r"\d+(?:[ \u00a0.,]\d{3})*(?:[.,]\d+)?|[%$€£₽¥]|[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)
_CYRILLIC = re.compile(r"[а-яё]")
_CURRENCY = {
    "$": "$", "usd": "$", "dollar": "$", "dollars": "$", "долл": "$", "доллар": "$", "доллара": "$",
    "долларов": "$", "€": "€", "eur": "€", "euro": "€", "euros": "€", "евро": "€", "£": "£", "gbp": "£",
    "pound": "£", "pounds": "£", "₽": "₽", "rub": "₽", "руб": "₽", "рубль": "₽", "рубля": "₽", "рублей": "₽",
    "р": "₽", "¥": "¥",
}
GAP = 3
"""How many other tokens may stand between two consecutive words of a phrase and still match it."""


@cache
def _stemmer(language: str):
    import snowballstemmer

    return snowballstemmer.stemmer(language)


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """The Snowball stem of one lower-case token (Russian for Cyrillic, English otherwise)."""
    if word[0].isdigit() or word in _CURRENCY:
        return word
    return _stemmer("russian" if _CYRILLIC.search(word) else "english").stemWord(word)


def tokens(text: str) -> list[str]:
    """Lower-case tokens of the text: words, numbers without separators, currency signs."""
    out = []
    for raw in _TOKEN.findall(text.lower().replace("ё", "е")):
        if raw[0].isdigit():
            raw = re.sub(r"[ \u00a0]", "", raw)
            raw = re.sub(r"[.,](?=\d{3}\b)", "", raw).replace(",", ".")
        out.append(_CURRENCY.get(raw, raw))
    return out


def stems(text: str) -> list[str]:
    """The stemmed tokens of the text."""
    return [stem(t) for t in tokens(text)]


def find_phrase(haystack: Sequence[str], phrase: Sequence[str], *, gap: int = GAP) -> int | None:
    """Index where the stems of phrase start in haystack, in order with at most `gap` tokens between; else None."""
    if not phrase:
        return None
    for start, token in enumerate(haystack):
        if token != phrase[0]:
            continue
        at, ok = start, True
        for wanted in phrase[1:]:
            window = haystack[at + 1 : at + 2 + gap]
            if wanted not in window:
                ok = False
                break
            at = at + 1 + window.index(wanted)
        if ok:
            return start
    return None


def contains_run(haystack: Sequence[str], run: Sequence[str]) -> bool:
    """Whether run occurs contiguously in haystack."""
    n = len(run)
    return n > 0 and any(list(haystack[i : i + n]) == list(run) for i in range(len(haystack) - n + 1))
