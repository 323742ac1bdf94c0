"""Language detection with lingua-language-detector (its models ship inside the wheel; nothing is downloaded).

`detect(text)` returns an ISO 639-1 code in lower case, or None when the text is too short or too mixed to tell.
The detector is built once, on the first call (never at import), and reused by every thread of the process.
It reads only what a person reads (`readable`): HTML markup, invisible characters, full-width letters and ids in
a hostile reply ("<html><body><p>Hi</p>...", once detected as French) must not pick the language of the answer.

Choice of languages and mode, measured on this machine (2 cores shared with other jobs, so times vary by 2x;
lingua 2.1, Python 3.11; RSS is the process peak; "preloaded" loads every model up front, as a long-running
worker ends up doing; "short texts" are seven 2-4 word phrases in de, es, pt, it, pl, uk, ru):

    all 75 languages, high accuracy, preloaded:  load 13.4 s, 1261 MB, 1.1 ms per short text
    all 75 languages, low accuracy, preloaded:   load 0.6 s,    91 MB, 0.13 ms ("Danke, klingt interessant." -> sv)
    20 European languages, high, preloaded:      load 4.9 s,   587 MB, 0.6 ms
    20 European languages, low, preloaded:       load 0.3 s,    48 MB, 0.09 ms
    10 languages, high, preloaded:               load 3.3 s,   374 MB, all seven short texts right
    10 languages, low, preloaded:                load 0.2 s,    34 MB, one short text wrong (de -> nl)
    LANGUAGES (30), high, preloaded:             load 34 s (loaded machine), 895 MB; replies.jsonl 121/121
    LANGUAGES (30), low, preloaded:              load 1.2 s,    69 MB; replies.jsonl 120/121, 2.8 ms per reply
    LANGUAGES (30), low, lazy (what we build):   first call 0.8 s, 50 MB
    (lazy loading saves nothing in high mode: each detection consults every candidate's models.)

"replies.jsonl" is agreement with the `lang` label on the 121 replies of tests/eval/replies.jsonl longer than
40 characters. We build LANGUAGES in low-accuracy mode, lazily: a draft or a reply of a sentence or more is told
apart as well as in high mode at a tenth of the memory and start-up time; a two-word reply that low mode might
get wrong returns None instead (MIN_LETTERS, CONFIDENT, MIN_DISTANCE), and callers treat None as "not known".
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections import Counter
from collections.abc import Iterable

LANGUAGES = ("en", "ru", "uk", "be", "kk", "de", "fr", "es", "pt", "it", "pl", "nl", "sv", "da", "nb", "fi", "cs",
             "sk", "tr", "ro", "hu", "bg", "sr", "hr", "el", "lt", "lv", "et", "sl", "ca")
"""The languages told apart (ISO 639-1); anything else is reported as the closest of these or None."""
MIN_LETTERS = 12
"""Below this many letters a text is too short to tell, unless one language is far ahead (CONFIDENT)."""
MIN_DISTANCE = 0.1
"""lingua's minimum relative distance: between two close candidates it answers None instead of guessing."""
MAX_CHARS = 3000
"""Only the start of a long text is read: it is enough to tell, and detection time grows with length."""
CONFIDENT = 0.9
"""A short text is still reported when its best language has at least this confidence."""

_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
_SENTENCE = re.compile(r"(?<=[.!?…])\s+|\n+")
_URLISH = re.compile(r"\S+@\S+|https?://\S+|www\.\S+")
_CODE = re.compile(r"\S*\d\S*")
"""Tokens with a digit in them (ids, order numbers, "html-1", "10am"): not words of any language."""
_MARKUP = re.compile(r"<!--.*?(?:-->|$)|<(script|style)\b.*?(?:</\1\s*>|$)|</?[A-Za-z][^<>]*>", re.S | re.I)
"""HTML comments, script and style blocks, tags: what a mail reader never shows as text."""
_OVERRIDE = re.compile(r"\u202e([^\u202a-\u202e\n]*)(?:\u202c|$)", re.M)
_lock = threading.Lock()
_detector = None


def _build():
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    languages = [Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper())) for code in LANGUAGES]
    return (LanguageDetectorBuilder.from_languages(*languages).with_low_accuracy_mode()
            .with_minimum_relative_distance(MIN_DISTANCE).build())


def detector():
    """The shared lingua detector, built on first use."""
    global _detector
    if _detector is None:
        with _lock:
            if _detector is None:
                _detector = _build()
    return _detector


def readable(text: str) -> str:
    """The words a person reads: NFKC-folded, overrides as displayed, no format chars, markup, links or codes."""
    text = _OVERRIDE.sub(lambda run: run.group(1)[::-1], unicodedata.normalize("NFKC", text))
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    return _CODE.sub(" ", _URLISH.sub(" ", _MARKUP.sub(" ", text)))


def detect(text: str | None) -> str | None:
    """The language of what a person reads in the text (ISO 639-1), or None when empty, too short or undecided."""
    clean = readable((text or "")[:MAX_CHARS])
    letters = len(_LETTER.findall(clean))
    if letters == 0:
        return None
    d = detector()
    if letters < MIN_LETTERS:
        ranked = d.compute_language_confidence_values(clean)
        if not ranked or ranked[0].value < CONFIDENT:
            return None
        return ranked[0].language.iso_code_639_1.name.lower()
    found = d.detect_language_of(clean)
    return found.iso_code_639_1.name.lower() if found else None


def _weights(texts: Iterable[str | None]) -> Counter[str]:
    weight: Counter[str] = Counter()
    for text in texts:
        for sentence in _SENTENCE.split(text or ""):
            if code := detect(sentence):
                weight[code] += len(_LETTER.findall(sentence))
    return weight


def dominant(texts: Iterable[str | None]) -> str | None:
    """The language most of the texts' letters are in, sentence by sentence (None when nothing can be told)."""
    weight = _weights(texts)
    return weight.most_common(1)[0][0] if weight else None


def shares(text: str) -> dict[str, float]:
    """Share of the text's letters in each language, sentence by sentence, for text that switches language."""
    weight = _weights([text])
    total = sum(weight.values())
    return {code: n / total for code, n in weight.most_common()} if total else {}


_NAMES = {
    "english": "en", "russian": "ru", "русский": "ru", "английский": "en", "german": "de", "deutsch": "de",
    "french": "fr", "français": "fr", "spanish": "es", "español": "es", "portuguese": "pt", "italian": "it",
    "polish": "pl", "ukrainian": "uk", "українська": "uk", "dutch": "nl",
}


def code_for(name: str | None) -> str | None:
    """An ISO 639-1 code for a persona's language setting ("Russian", "русский", "ru"); None for 'match' or unknown."""
    value = (name or "").strip().lower()
    if not value or value == "match":
        return None
    if value in _NAMES:
        return _NAMES[value]
    if len(value) == 2 and value.isalpha():
        return value
    from lingua import Language

    try:
        return Language.from_str(value).iso_code_639_1.name.lower()
    except ValueError:
        return None


def expected(persona_language: str | None, *, latest_inbound: str | None = None,
             recipient_language: str | None = None, default: str = "en") -> str | None:
    """The language a draft must be in: the persona's fixed one, else the latest reply's, else the known or default."""
    fixed = code_for(persona_language)
    if fixed:
        return fixed
    return detect(latest_inbound) or code_for(recipient_language) or (default if latest_inbound is None else None)
