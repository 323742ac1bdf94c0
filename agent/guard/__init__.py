"""The draft guard: pure checks on what the assistant sends in its user's name, and language detection.

See agent.guard.checks for the interface (check_draft, GuardDraft, GuardContext, Verdict) and
agent.guard.language for detect / dominant / expected. Nothing here touches the database or a model.
"""

from agent.guard.checks import (
    CHECK_NAMES,
    DEFAULT_MAX_CHARS,
    GuardContext,
    GuardDraft,
    Verdict,
    check_draft,
    explain,
    failures,
    prompt_fragments,
)

__all__ = ["CHECK_NAMES", "DEFAULT_MAX_CHARS", "GuardContext", "GuardDraft", "Verdict", "check_draft", "explain",
           "failures", "prompt_fragments"]
