"""Pure scheduling: when may each queued email go, given windows, a daily cap and spacing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

SEARCH_DAYS = 14


@dataclass(frozen=True, slots=True)
class Window:
    """Days and hours emails may go out, in one time zone."""

    days: frozenset[int]
    start: time
    end: time
    tz: ZoneInfo

    def contains(self, at: datetime) -> bool:
        """Whether `at` falls inside the window (an end of 00:00 is midnight)."""
        local = at.astimezone(self.tz)
        before_end = self.end == time(0) or local.time() < self.end
        return local.isoweekday() in self.days and self.start <= local.time() and before_end

    def next_open(self, at: datetime) -> datetime:
        """`at` when inside the window, else the start of the next opening."""
        if self.contains(at):
            return at
        local = at.astimezone(self.tz)
        for offset in range(SEARCH_DAYS):
            day = local.date() + timedelta(days=offset)
            opening = datetime.combine(day, self.start, self.tz)
            if day.isoweekday() in self.days and opening > local:
                return opening
        raise ValueError("the window never opens")


@dataclass(frozen=True, slots=True)
class Queued:
    """One email waiting for a slot, in priority order."""

    key: object
    window: Window


def day_start(day: date, tz: ZoneInfo) -> datetime:
    """Midnight of `day` in `tz`."""
    return datetime.combine(day, time(0), tz)


def plan(
    queue: list[Queued], *, now: datetime, not_before: datetime | None, cap: int, sent_today: int,
    day_tz: ZoneInfo, spacing: timedelta, limit: int = 500,
) -> dict[object, datetime]:
    """Estimated send time of each queued email (the first `limit` of them).

    Greedy, in priority order: at each moment the first email whose window is open goes; nothing goes while
    today's cap is used up; consecutive sends are `spacing` apart.
    """
    t = max(now, not_before or now)
    counts: dict[date, int] = {now.astimezone(day_tz).date(): sent_today}
    remaining = list(queue[:limit])
    slots: dict[object, datetime] = {}
    while remaining:
        day = t.astimezone(day_tz).date()
        if counts.get(day, 0) >= cap:
            t = max(t, day_start(day + timedelta(days=1), day_tz))
            continue
        ready = next((q for q in remaining if q.window.contains(t)), None)
        if ready is None:
            t = min(q.window.next_open(t) for q in remaining)
            continue
        slots[ready.key] = t
        remaining.remove(ready)
        counts[day] = counts.get(day, 0) + 1
        t = t + spacing
    return slots
