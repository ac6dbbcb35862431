"""Token usage drawn as a server-rendered SVG bar chart: one group of bars per day, one bar per bot."""

from django.utils.html import escape
from django.utils.safestring import mark_safe

COLOURS = ["#2563eb", "#db2777", "#059669", "#d97706", "#7c3aed", "#0891b2"]
HEIGHT, BAR, GAP, TOP, BOTTOM, LEFT = 180, 10, 12, 10, 40, 50


def usage_chart(rows, days=30):
    """SVG of prompt + completion tokens per day and bot, for the latest `days` days in rows."""
    if not rows:
        return ""
    bots = sorted({row["bot"] for row in rows})
    by_day = {}
    for row in rows:
        by_day.setdefault(row["day"], {})[row["bot"]] = (row["prompt"] or 0) + (row["completion"] or 0)
    shown = sorted(by_day)[-days:]
    peak = max(max(day.values()) for day in by_day.values()) or 1
    group = len(bots) * BAR + GAP
    width = LEFT + len(shown) * group + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{HEIGHT + TOP + BOTTOM}" '
             f'aria-label="Tokens per day and bot" class="usage-chart">',
             f'<text x="0" y="{TOP + 10}" font-size="10">{peak:,}</text>',
             f'<line x1="{LEFT - 4}" y1="{TOP + HEIGHT}" x2="{width}" y2="{TOP + HEIGHT}" stroke="#999"/>']
    for index, day in enumerate(shown):
        x0 = LEFT + index * group
        for slot, bot in enumerate(bots):
            value = by_day[day].get(bot, 0)
            height = round(HEIGHT * value / peak)
            parts.append(
                f'<rect x="{x0 + slot * BAR}" y="{TOP + HEIGHT - height}" width="{BAR - 1}" height="{height}" '
                f'fill="{COLOURS[slot % len(COLOURS)]}"><title>{escape(bot)} {day}: {value:,} tokens</title></rect>'
            )
        parts.append(f'<text x="{x0}" y="{TOP + HEIGHT + 14}" font-size="9">{day:%m-%d}</text>')
    for slot, bot in enumerate(bots):
        parts.append(f'<rect x="{LEFT + slot * 110}" y="{TOP + HEIGHT + 24}" width="10" height="10" fill="{COLOURS[slot % len(COLOURS)]}"/>'
                     f'<text x="{LEFT + slot * 110 + 14}" y="{TOP + HEIGHT + 33}" font-size="10">{escape(bot)}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every value in it is a number, a date or escaped
