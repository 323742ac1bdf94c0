"""Language detection with lingua-language-detector (its models ship inside the wheel; nothing is downloaded).

`detect(text)` returns an ISO 639-1 code in lower case, or None when the text is too short or too mixed to tell.
The detector is built once, on the first call (never at import), and reused by every thread of the process.

Choice of languages and mode, measured on this machine (2 shared cores, lingua 2.1, Python 3.11; models
preloaded so the numbers include everything a long-running worker pays; RSS is the process peak):

    all 75 languages, high accuracy:  load 13.4 s, 1261 MB, 1.13 ms per short text
    all 75 languages, low accuracy:   load 0.63 s,   91 MB, 0.13 ms ("Danke, klingt interessant." -> sv, "STOP" -> sl)
    20 European languages, high:      load 4.9 s,   587 MB, 0.61 ms
    20 European languages, low:       load 0.27 s,   48 MB, 0.09 ms
    10 languages (LANGUAGES), high:   load 3.3 s,   374 MB (all seven 2-3 word test phrases right)
    10 languages (LANGUAGES), low:    load 0.23 s,   34 MB ("Danke, klingt interessant." -> nl)
    (lazy loading saves nothing in high mode: a detection consults every candidate's models.)

We use LANGUAGES below in low-accuracy mode: the texts the guard and the thread need to tell apart are emails of a
sentence or more, where low accuracy agrees with the labels of tests/eval/replies.jsonl as well as high mode does
(see tests/test_eval_dataset.py), at a tenth of the memory and a fifteenth of the start-up time; a mistake on a
two-word reply costs nothing because such text returns None (MIN_LETTERS, MIN_DISTANCE). Adding a language to
LANGUAGES costs about 1-3 MB in this mode.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterable

LANGUAGES = ("en", "ru", "uk", "be", "kk", "de", "fr", "es", "pt", "it", "pl", "nl", "sv", "da", "nb", "fi", "cs",
             "sk", "tr", "ro", "hu", "bg", "sr", "hr", "el", "lt", "lv", "et", "sl", "ca")
"""The languages told apart (ISO 639-1); anything else is reported as the closest of these or None."""
MIN_LETTERS = 12
"""Below this many letters a text is too short to tell, unless one language is far ahead (CONFIDENT)."""
MIN_DISTANCE = 0.1
"""lingua's minimum relative distance: between two close candidates it answers None instead of guessing."""
CONFIDENT = 0.9
"""A short text is still reported when its best language has at least this confidence."""

_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
_SENTENCE = re.compile(r"(?<=[.!?…])\s+|\n+")
_URLISH = re.compile(r"\S+@\S+|https?://\S+|www\.\S+")
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


def detect(text: str | None) -> str | None:
    """The language of the text as an ISO 639-1 code, or None when empty, too short or undecided."""
    clean = _URLISH.sub(" ", text or "")
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


def dominant(texts: Iterable[str | None]) -> str | None:
    """The language most of the text is in, weighing each text by its letters (None when nothing can be told)."""
    weight: Counter[str] = Counter()
    for text in texts:
        if text and (code := detect(text)):
            weight[code] += len(_LETTER.findall(text))
    return weight.most_common(1)[0][0] if weight else None


def shares(text: str) -> dict[str, float]:
    """Share of the text's letters in each language, sentence by sentence, for text that switches language."""
    weight: Counter[str] = Counter()
    for sentence in _SENTENCE.split(text or ""):
        if code := detect(sentence):
            weight[code] += len(_LETTER.findall(sentence))
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
    """The language a draft must be in: the persona's fixed one, else the recipient's latest message's, else known/default."""
    fixed = code_for(persona_language)
    if fixed:
        return fixed
    return detect(latest_inbound) or code_for(recipient_language) or (default if latest_inbound is None else None)
