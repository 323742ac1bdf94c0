"""Template leftovers in a draft: bracketed or braced variables, "Your Name", "INSERT", lorem ipsum (EN and RU)."""

from __future__ import annotations

import re

# Each pattern names what it found; case-sensitive ones are where the lower-case words are ordinary prose
# ("I got your name from Maria", "вставить в календарь").
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a bracketed placeholder", re.compile(r"\[[^\[\]\n]{1,40}\](?!\()")),
    ("a braced placeholder", re.compile(r"\{\{?\s*[^{}\n]{1,40}?\s*\}?\}")),
    ("an angle-bracket placeholder",
     re.compile(r"<(?!/?(?i:untrusted_email))\s*[A-ZА-ЯЁa-zа-яё][\w .-]{0,30}\s*>(?!\S*@)")),
    ("a percent variable", re.compile(r"%[A-Za-zА-Яа-яЁё_]{2,30}%|\$\{?[a-z_]{3,30}\}?(?!\d)")),
    ("a name placeholder", re.compile(r"\b(?:Your|YOUR) (?:Name|NAME|Company|COMPANY|Title|TITLE)\b|"
                                      r"\b(?:First|Last|Company|Recipient) Name\b|\bFIRST_?NAME\b")),
    ("an INSERT marker", re.compile(r"\b(?:INSERT|TODO|TBD|FIXME)\b|\bX{3,}\b|_{4,}")),
    ("lorem ipsum", re.compile(r"\blorem ipsum\b|\bdolor sit amet\b", re.IGNORECASE)),
    ("a Russian placeholder", re.compile(
        r"[«\"“]\s*(?:[Вв]аше|[Вв]аша|[Вв]аш)\s+(?:имя|компания|должность|фамилия)\s*[»\"”]|"
        r"\b(?:Ваше Имя|Ваша Компания|Имя Фамилия|ИМЯ|ФАМИЛИЯ|КОМПАНИЯ)\b|\bВСТАВ(?:ИТЬ|ЬТЕ)\b")),
)


def find(text: str) -> list[str]:
    """What template leftovers the text contains, as 'kind: "match"' strings (empty when clean)."""
    found: list[str] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern in _PATTERNS:
        for match in pattern.finditer(text):
            start, end = match.span()
            if not any(start < e and s < end for s, e in taken):
                taken.append((start, end))
                found.append(f'{kind}: "{match.group(0).strip()}"')
    return found
