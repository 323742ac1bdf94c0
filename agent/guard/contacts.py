"""Links, email addresses and phone numbers in a text, normalised so a genuine repeat compares equal.

A link is compared without scheme, "www.", case, trailing punctuation or a trailing slash; it is allowed when
it equals an allowed link or is a path prefix of one (the home page of a booking link's site). An address is
compared lower-case; a phone number by its last ten digits (so "+7 495 123-45-67" equals "8 (495) 123 45 67").
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
_TLDS = ("com|net|org|io|ly|co|ai|app|dev|me|ru|su|рф|de|fr|es|it|pt|pl|nl|eu|uk|us|ua|kz|by|info|biz|xyz|to|gl|"
         "gg|cc|link|site|online|tech|so|sh|page|cal|ch|at|se|no|fi|dk|cz|ca|au|in|jp|cn|br|tv|fm|ws|is|im")
_URL = re.compile(
    rf"(?:https?://|www\.)[^\s<>\"'«»]+|(?<![\w@.-])(?:[a-z0-9-]+\.)+(?:{_TLDS})\b(?:/[^\s<>\"'«»]*)?",
    re.IGNORECASE,
)
_PHONE = re.compile(r"(?<![\w+])\+?\d[\d \u00a0().-]{6,20}\d(?!\w)")
_DATE = re.compile(r"^(?:\d{1,2}[./]\d{1,2}[./]\d{2,4}|\d{4}-\d{2}-\d{2})\b")
_TRAILING = ".,;:!?)]}»\"'”’…"


def normal_link(url: str) -> str:
    """A link without scheme, www., case, trailing punctuation or trailing slash."""
    url = url.strip().rstrip(_TRAILING).lower()
    url = re.sub(r"^https?://", "", url)
    url = re.sub(r"^www\.", "", url)
    return url.rstrip("/")


def _phone_digits(raw: str) -> str | None:
    digits = re.sub(r"\D", "", raw)
    if not 9 <= len(digits) <= 15 or _DATE.match(raw.strip()):
        return None
    return digits[-10:]


def _is_link(raw: str) -> bool:
    """False for names written like domains ("ASP.NET"): no scheme or www. and an upper-case ending."""
    if re.match(r"(?:https?://|www\.)", raw, re.IGNORECASE):
        return True
    host = raw.split("/", 1)[0]
    return not host.rsplit(".", 1)[-1].isupper()


def extract(text: str) -> dict[str, set[str]]:
    """The normalised links, addresses and phone numbers in the text, by kind."""
    emails = {m.group(0).rstrip(_TRAILING).lower() for m in _EMAIL.finditer(text)}
    without_emails = _EMAIL.sub(" ", text)
    links = {normal_link(m.group(0)) for m in _URL.finditer(without_emails) if _is_link(m.group(0))}
    without_links = _URL.sub(" ", without_emails)
    phones = {d for m in _PHONE.finditer(without_links) if (d := _phone_digits(m.group(0)))}
    return {"link": {x for x in links if x}, "email": emails, "phone": phones}


def _link_allowed(link: str, allowed: set[str]) -> bool:
    return any(link == a or a.startswith((link + "/", link + "?")) for a in allowed)


def unknown(text: str, sources: Iterable[str]) -> list[str]:
    """The links, addresses and numbers in the text that none of the sources contains, as 'kind value' strings."""
    found = extract(text)
    allowed: dict[str, set[str]] = {"link": set(), "email": set(), "phone": set()}
    for source in sources:
        for kind, values in extract(source).items():
            allowed[kind] |= values
    # An address's domain is a link the sources gave too ("anna@acme.io" allows "acme.io").
    allowed["link"] |= {e.split("@", 1)[1] for e in allowed["email"]}
    bad = [f"link {x}" for x in sorted(found["link"]) if not _link_allowed(x, allowed["link"])]
    bad += [f"address {x}" for x in sorted(found["email"] - allowed["email"])]
    bad += [f"phone number ending {x[-4:]}" for x in sorted(found["phone"] - allowed["phone"])]
    return bad
