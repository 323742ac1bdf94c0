"""Interface language: gettext catalogs (Babel) chosen per request from a cookie or the browser's language."""

from __future__ import annotations

from contextvars import ContextVar
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from babel import Locale
from babel.core import negotiate_locale
from babel.dates import format_datetime
from babel.numbers import format_decimal, format_percent
from babel.support import NullTranslations, Translations
from starlette.requests import Request

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
LANGUAGES = {"en": "English", "ru": "Русский"}
DEFAULT = "en"
COOKIE = "ea_lang"
_current: ContextVar[str] = ContextVar("ea_locale", default=DEFAULT)


@lru_cache(maxsize=len(LANGUAGES))
def translations(lang: str) -> NullTranslations:
    """The compiled catalog of a language (English is the source text)."""
    if lang == DEFAULT:
        return NullTranslations()
    return Translations.load(str(LOCALE_DIR), [lang], domain="messages")


def current() -> str:
    """The language of the request being handled."""
    return _current.get()


def activate(lang: str) -> None:
    """Use this language for the rest of the request."""
    _current.set(lang if lang in LANGUAGES else DEFAULT)


def gettext(message: str, **variables: object) -> str:
    """Translate, then fill %(name)s placeholders."""
    text = translations(current()).gettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, n: int, **variables: object) -> str:
    """Translate with the plural form for n (%(num)d is n)."""
    text = translations(current()).ngettext(singular, plural, n)
    return text % {"num": n, **variables}


_ = gettext


def raw_gettext(message: str) -> str:
    """Translate only; Jinja's newstyle gettext fills the placeholders itself."""
    return translations(current()).gettext(message)


def raw_ngettext(singular: str, plural: str, n: int) -> str:
    """The plural form only, for Jinja."""
    return translations(current()).ngettext(singular, plural, n)


def _accepted(header: str) -> list[str]:
    weighted = []
    for part in header.split(","):
        lang, _sep, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if lang:
            weighted.append((q, lang.strip().replace("-", "_")))
    return [lang for q, lang in sorted(weighted, key=lambda x: -x[0]) if q > 0]


def pick(request: Request) -> str:
    """The cookie's choice, else the best match for Accept-Language, else English."""
    chosen = request.cookies.get(COOKIE)
    if chosen in LANGUAGES:
        return chosen
    preferred = _accepted(request.headers.get("accept-language", ""))
    found = negotiate_locale([p.split("_")[0] for p in preferred], list(LANGUAGES), sep="_")
    return found or DEFAULT


def when(value: datetime | None) -> str:
    """A timestamp as text in the current language (UTC; the browser rewrites it to local time)."""
    if value is None:
        return ""
    return format_datetime(value.astimezone(UTC), "d MMM y, HH:mm 'UTC'", locale=Locale.parse(current()))


def number(value: float | int) -> str:
    """A number with the current language's separators."""
    return format_decimal(value, locale=current())


def percent(value: float | None) -> str:
    """A ratio as a percentage, or a dash when there is none."""
    return "—" if value is None else format_percent(value, locale=current())


def extract_descriptions(fileobj, keywords, comment_tags, options):  # noqa: ANN001, ANN201 - Babel's extractor API
    """Babel extractor: the description="..." texts of pydantic Field(...) calls (persona help texts)."""
    import ast

    tree = ast.parse(fileobj.read().decode("utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Field":
            for kw in node.keywords:
                if kw.arg == "description" and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
                    yield node.lineno, "_", kw.value.value, []
