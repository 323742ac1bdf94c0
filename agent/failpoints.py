"""Crash-test failpoints: `reached(name)` SIGKILLs this process at a point named in EA_FAILPOINTS, else does nothing.

EA_FAILPOINTS is a comma-separated list of `name:n` (die the n-th time the point is reached; `name` alone means
the first time). It is read once, on the first call; without it every call returns at once.
"""

from __future__ import annotations

import os
import signal
import threading
from functools import cache

_counts: dict[str, int] = {}
_lock = threading.Lock()


@cache
def _armed() -> dict[str, int]:
    """The points armed for this process and the hit on which each one kills."""
    armed: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in os.environ.get("EA_FAILPOINTS", "").split(","))):
        name, _, nth = item.partition(":")
        armed[name] = int(nth or 1)
    return armed


def reached(name: str) -> None:
    """Called at a crash point: SIGKILL this process when EA_FAILPOINTS says this hit is the one."""
    armed = _armed()
    if name not in armed:
        return
    with _lock:
        _counts[name] = _counts.get(name, 0) + 1
        due = _counts[name] == armed[name]
    if due:
        os.kill(os.getpid(), signal.SIGKILL)
