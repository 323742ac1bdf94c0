"""Prompt templates, loaded by name from prompts/ and filled from the persona and the thread."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"
USER_MARKER = "=== user ==="


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(PROMPTS_DIR),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


DELIMITER = re.compile(r"<\s*/?\s*untrusted")  # matched on the folded text, see _folded
INERT = "\u2039"  # ‹ : what a delimiter's "<" becomes; NFKC leaves it alone, so it never folds back to "<"


def _folded(text: str) -> tuple[str, list[int]]:
    """The text as compared (NFKC, case-folded, invisible format characters dropped) and, for each of its
    characters, the index of the original character it came from."""
    folded: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        if unicodedata.category(char) == "Cf":  # zero-width spaces, joiners, bidi marks: invisible to a reader
            continue
        piece = unicodedata.normalize("NFKC", char).casefold()
        folded.append(piece)
        origin.extend([index] * len(piece))
    return "".join(folded), origin


def untrusted(text: str) -> str:
    """Inbound text as inert data: anything that reads as our <untrusted…> delimiters is neutralised.

    The comparison is case-insensitive and sees through Unicode look-alikes (full-width ＜, compatibility
    letters) and spaces or invisible characters inside the tag; the "<" of each match becomes "‹".
    """
    folded, origin = _folded(text)
    starts = {origin[m.start()] for m in DELIMITER.finditer(folded)}
    if not starts:
        return text
    return "".join(INERT if i in starts else c for i, c in enumerate(text))


def delimiters_in(text: str) -> int:
    """How many <untrusted…> delimiters the text holds, by the comparison untrusted() uses."""
    return len(DELIMITER.findall(_folded(text)[0]))


def render(name: str, **context: Any) -> tuple[str, str]:
    """The (system, user) messages of prompt `name`."""
    env = _environment()
    env.filters["untrusted"] = untrusted
    text = env.get_template(f"{name}.md").render(**context)
    if USER_MARKER not in text:
        raise ValueError(f"prompt {name} lacks the '{USER_MARKER}' line")
    system, user = text.split(USER_MARKER, 1)
    return system.strip(), user.strip()
