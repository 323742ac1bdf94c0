"""Charts drawn on the server as SVG: sends and replies per day as bars, the reply rate as a line of points."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from babel.dates import format_date
from markupsafe import Markup, escape
from psycopg import AsyncConnection

from agent.stats import service as stats
from agent.stats.service import Daily, Day
from server import i18n
from server.i18n import gettext as _

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 40, 44, 12, 28


def _day(day: Day, fmt: str = "d MMM") -> str:
    return format_date(day.day, fmt, locale=i18n.current())


def _label_every(count: int) -> int:
    return 1 if count <= 10 else 5 if count <= 35 else 15


def _scale_max(values: list[int]) -> int:
    top = max(values, default=0)
    for step in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000):
        if top <= step * 4:
            return max(step * 4, 4)
    return top


def daily_svg(series: Daily, *, chart_id: str) -> Markup:
    """The chart of a Daily series: accessible title and description, a tooltip title on every bar and point."""
    points = series.points
    n = max(len(points), 1)
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = inner_w / n
    bar = max(slot * 0.36, 1.0)
    top = _scale_max([max(p.sent, p.replies) for p in points])
    base = TOP + inner_h
    sent, replies = sum(p.sent for p in points), sum(p.replies for p in points)
    contacted, replied = sum(p.contacted for p in points), sum(p.replied for p in points)
    title = _("Emails sent, replies and reply rate per day, last %(days)s days", days=series.days)
    desc = _("In total %(sent)s sent, %(replies)s replies, reply rate %(rate)s.", sent=i18n.number(sent),
             replies=i18n.number(replies), rate=i18n.percent(replied / contacted if contacted else None))
    out = [f'<svg class="chart" id="{chart_id}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" preserveAspectRatio="none"'
           f' aria-labelledby="{chart_id}-title {chart_id}-desc" data-days="{series.days}">',
           f'<title id="{chart_id}-title">{escape(title)}</title><desc id="{chart_id}-desc">{escape(desc)}</desc>']
    for i in range(5):  # grid lines with the count axis on the left and the rate axis on the right
        y = base - inner_h * i / 4
        out.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
                   f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{top * i // 4}</text>'
                   f'<text class="axis" x="{WIDTH - RIGHT + 6}" y="{y + 4:.1f}">{25 * i}%</text>')
    line: list[str] = []
    every = _label_every(n)
    for i, p in enumerate(points):
        x = LEFT + slot * i + (slot - 2 * bar) / 2
        day = escape(_day(p))
        for offset, value, kind, label in ((0, p.sent, "sent", _("%(num)s sent", num=p.sent)),
                                           (bar, p.replies, "replies", _("%(num)s replies", num=p.replies))):
            h = inner_h * value / top
            out.append(f'<rect class="bar bar-{kind}" x="{x + offset:.1f}" y="{base - h:.1f}" width="{bar:.1f}"'
                       f' height="{h:.1f}" data-day="{p.day.isoformat()}" data-value="{value}">'
                       f'<title>{day}: {escape(label)}</title></rect>')
        if p.reply_rate is not None:
            cx, cy = x + bar, base - inner_h * p.reply_rate
            line.append(f"{cx:.1f},{cy:.1f}")
            rate = _("reply rate %(rate)s (%(replied)s of %(contacted)s first contacted this day)",
                     rate=i18n.percent(p.reply_rate), replied=p.replied, contacted=p.contacted)
            out.append(f'<circle class="point" cx="{cx:.1f}" cy="{cy:.1f}" r="3.5" data-day="{p.day.isoformat()}">'
                       f'<title>{day}: {escape(rate)}</title></circle>')
        if i % every == 0 or i == n - 1:
            out.append(f'<text class="axis" x="{LEFT + slot * i + slot / 2:.1f}" y="{HEIGHT - 8}"'
                       f' text-anchor="middle">{day}</text>')
    if len(line) > 1:
        out.append(f'<polyline class="rate-line" points="{" ".join(line)}"/>')
    out.append("</svg>")
    return Markup("".join(out))


async def activity(conn: AsyncConnection, *, user_id: UUID, days: int, path: str, assistant_id: UUID | None = None,
                   campaign_id: UUID | None = None) -> dict[str, Any]:
    """What partials/activity_chart.html shows: the series for the scope, its SVG and the page to link 7/30/90 to."""
    series = await stats.daily(conn, user_id=user_id, days=stats.chart_days(days), assistant_id=assistant_id,
                               campaign_id=campaign_id)
    return {"series": series, "svg": daily_svg(series, chart_id="activity-chart"), "path": path,
            "choices": stats.CHART_DAYS}
