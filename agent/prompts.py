"""Prompt templates, loaded by name from prompts/ and filled from the persona and the thread."""

from __future__ import annotations

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


def untrusted(text: str) -> str:
    """Inbound text as inert data: our delimiters inside it are neutralised."""
    return text.replace("<untrusted", "‹untrusted").replace("</untrusted", "‹/untrusted")


def render(name: str, **context: Any) -> tuple[str, str]:
    """The (system, user) messages of prompt `name`."""
    env = _environment()
    env.filters["untrusted"] = untrusted
    text = env.get_template(f"{name}.md").render(**context)
    if USER_MARKER not in text:
        raise ValueError(f"prompt {name} lacks the '{USER_MARKER}' line")
    system, user = text.split(USER_MARKER, 1)
    return system.strip(), user.strip()
