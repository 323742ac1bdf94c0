"""The one rule for text from outside: no NUL, no control characters (tab and line breaks aside), no lone
surrogates; single-line text has no line breaks either. Models and query parameters use these types."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

# C0 and C1 controls except tab, LF and CR; DEL; lone UTF-16 surrogates (valid JSON, not encodable as UTF-8).
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
LINE_BREAK = re.compile(r"[\r\n\x85\u2028\u2029]")
HEADER_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 field name: printable ASCII except the colon


def _described(char: str) -> str:
    return f"U+{ord(char):04X}"


def no_controls(value: str) -> str:
    """The value, or ValueError when it holds a control character."""
    found = CONTROL.search(value)
    if found:
        raise ValueError(f"must not contain control characters (found {_described(found.group())})")
    return value


def single_line(value: str) -> str:
    """The value, or ValueError when it holds a control character or a line break."""
    no_controls(value)
    if LINE_BREAK.search(value):
        raise ValueError("must be a single line (no line breaks)")
    return value


def header_name(value: str) -> str:
    """A mail header's name, or ValueError."""
    if not HEADER_NAME.fullmatch(value):
        raise ValueError("a header name is printable ASCII without spaces or ':'")
    return value


def without_controls(value: str) -> str:
    """The value with control characters removed, for free-form input that is better kept than refused (a search
    box, a pasted form field); the same characters as no_controls()."""
    return CONTROL.sub("", value)


NoControls = AfterValidator(no_controls)
"""Metadata for Annotated[str, ..., NoControls]: multi-line text."""
SingleLine = AfterValidator(single_line)
"""Metadata for Annotated[str, ..., SingleLine]: one line (names, subjects, header values, search terms)."""
Text = Annotated[str, NoControls]
Line = Annotated[str, SingleLine]
HeaderName = Annotated[str, StringConstraints(max_length=100), AfterValidator(header_name)]
