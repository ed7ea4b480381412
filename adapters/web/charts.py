"""Charts as inline SVG, written on the server: no JavaScript, nothing the CSP has to allow.

Only presentation attributes (``fill``, ``x``...) are used, never ``style``: the console's CSP
allows stylesheets from the app only, and inline style attributes would be refused.
"""
from __future__ import annotations

from datetime import date
from typing import Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD = 720, 180, 28
PALETTE = ("#3b6ea5", "#e08a2e", "#4c9a55", "#b04a5a", "#7a5fa8", "#8c6d46")


def stacked_bars(days: Sequence[date], series: dict[str, Sequence[int]], *, title: str) -> Markup:
    """One bar per day, one colour per series, with a legend; the title is the SVG's accessible name."""
    totals = [sum(values[i] for values in series.values()) for i in range(len(days))]
    top = max(totals, default=0) or 1
    step = (WIDTH - 2 * PAD) / max(len(days), 1)
    parts = [_open(title), _axis(top)]
    for i, day in enumerate(days):
        y = HEIGHT - PAD
        for n, (name, values) in enumerate(series.items()):
            height = (HEIGHT - 2 * PAD) * values[i] / top
            if height > 0:
                y -= height
                parts.append(
                    f'<rect x="{PAD + i * step:.1f}" y="{y:.1f}" width="{max(step - 1, 1):.1f}" height="{height:.1f}" '
                    f'fill="{PALETTE[n % len(PALETTE)]}"><title>{escape(name)} {day.isoformat()}: {values[i]}</title></rect>'
                )
    if days:
        parts.append(_label(PAD, HEIGHT - 8, days[0].isoformat()))
        parts.append(_label(WIDTH - PAD, HEIGHT - 8, days[-1].isoformat(), anchor="end"))
    for n, name in enumerate(series):
        x = PAD + n * 130
        parts.append(f'<rect x="{x}" y="4" width="10" height="10" fill="{PALETTE[n % len(PALETTE)]}"/>')
        parts.append(_label(x + 14, 13, str(name)))
    parts.append("</svg>")
    return Markup("".join(parts))


def share_bar(shares: dict[str, float], *, title: str) -> Markup:
    """A single horizontal bar split by share (0..1 each)."""
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} 44" role="img" class="chart">'
             f"<title>{escape(title)}</title>"]
    x = 0.0
    for n, (name, share) in enumerate(shares.items()):
        width = WIDTH * share
        if width > 0:
            parts.append(f'<rect x="{x:.1f}" y="0" width="{width:.1f}" height="24" fill="{PALETTE[n % len(PALETTE)]}">'
                         f"<title>{escape(name)}: {share:.1%}</title></rect>")
            x += width
        parts.append(_label(n * 180, 40, f"{name} {share:.1%}"))
    parts.append("</svg>")
    return Markup("".join(parts))


def _open(title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" class="chart">'
            f"<title>{escape(title)}</title>")


def _axis(top: int) -> str:
    return (f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#888"/>'
            + _label(PAD - 4, PAD + 4, str(top), anchor="end") + _label(PAD - 4, HEIGHT - PAD, "0", anchor="end"))


def _label(x: float, y: float, text: str, *, anchor: str = "start") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" font-size="11" text-anchor="{anchor}" fill="#333">{escape(text)}</text>'
