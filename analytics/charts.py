"""Charts for the analytics dashboard, drawn on the server as inline SVG.

Our own few lines rather than a charting package: pygal (the candidate)
writes its styles into a ``<style>`` element and ``style`` attributes in
the SVG, which the admin's Content-Security-Policy (style-src 'self' and a
nonce) blocks, and it loads its tooltips' script from a CDN. Here, shapes
carry classes styled by static/analytics/dashboard.css and presentation
attributes only; each chart scales to its box (viewBox) and is described
for screen readers, with the same figures in a table beside it.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 12, 28


def _frame(title: str, body: SafeString, y_labels: Sequence[tuple[float, str]], x_labels) -> SafeString:
    grid = format_html_join(
        "",
        '<line class="grid" x1="{}" x2="{}" y1="{}" y2="{}"/>'
        '<text class="axis" x="{}" y="{}" text-anchor="end">{}</text>',
        ((LEFT, WIDTH - RIGHT, y, y, LEFT - 6, y + 4, label) for y, label in y_labels),
    )
    ticks = format_html_join(
        "",
        '<text class="axis" x="{}" y="{}" text-anchor="middle">{}</text>',
        ((x, HEIGHT - 8, label) for x, label in x_labels),
    )
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="{}" preserveAspectRatio="xMidYMid meet">'
        "<title>{}</title>{}{}{}</svg>",
        WIDTH,
        HEIGHT,
        title,
        title,
        grid,
        ticks,
        body,
    )


def _y(value: float, top: float) -> float:
    plot = HEIGHT - TOP - BOTTOM
    return round(TOP + plot - (value / top) * plot if top else HEIGHT - BOTTOM, 1)


def _x_ticks(labels: Sequence[str], xs: Sequence[float], most: int = 8) -> list[tuple[float, str]]:
    step = max(1, -(-len(labels) // most))
    return [(xs[i], labels[i]) for i in range(0, len(labels), step)]


def line_chart(
    title: str, labels: Sequence[str], series: Sequence[tuple[str, str, Sequence[float | None]]]
) -> SafeString:
    """Rates from 0 to 1 by day: each series (name, css class, values) a
    line, broken where a day has no value, with a dot per day."""
    count = len(labels)
    plot_width = WIDTH - LEFT - RIGHT
    xs = [round(LEFT + (plot_width * (i + 0.5) / count), 1) for i in range(count)] if count else []
    parts = []
    for name, css, values in series:
        runs, run = [], []
        for x, value in zip(xs, values, strict=True):
            if value is None:
                if run:
                    runs.append(run)
                run = []
                continue
            run.append((x, _y(value, 1.0)))
        if run:
            runs.append(run)
        for points in runs:
            coords = " ".join(f"{x},{y}" for x, y in points)
            parts.append(format_html('<polyline class="line {}" points="{}" fill="none"/>', css, coords))
            parts.extend(format_html('<circle class="dot {}" cx="{}" cy="{}" r="3"/>', css, x, y) for x, y in points)
        parts.append(format_html("<desc>{}</desc>", name))
    y_labels = [(_y(v, 1.0), f"{int(v * 100)}%") for v in (0, 0.25, 0.5, 0.75, 1.0)]
    return _frame(title, mark_safe("".join(parts)), y_labels, _x_ticks(labels, xs))  # noqa: S308 (built of format_html)


def bar_chart(title: str, bars: Sequence[tuple[str, float]], css: str = "bar") -> SafeString:
    """One bar per (label, value), from 0 to the largest value."""
    top = max((value for _label, value in bars), default=0) or 1
    plot_width = WIDTH - LEFT - RIGHT
    slot = plot_width / max(len(bars), 1)
    # A value is written over its bar only where it fits in the bar's slot
    # (about 8 units a digit): a month of three-digit figures would overlap;
    # each bar's <title> and the tables below still give every figure.
    widest = max((len(_number(value)) for _label, value in bars), default=0)
    labelled = slot >= 8 * widest
    parts, xs = [], []
    for i, (label, value) in enumerate(bars):
        x = LEFT + slot * i + slot * 0.15
        y = _y(value, top)
        xs.append(round(x + slot * 0.35, 1))
        parts.append(
            format_html(
                '<rect class="{}" x="{}" y="{}" width="{}" height="{}"><title>{}: {}</title></rect>',
                css,
                round(x, 1),
                y,
                round(slot * 0.7, 1),
                round(HEIGHT - BOTTOM - y, 1),
                label,
                value,
            )
        )
        if labelled:
            parts.append(
                format_html(
                    '<text class="value" x="{}" y="{}" text-anchor="middle">{}</text>',
                    round(x + slot * 0.35, 1),
                    max(y - 4, TOP + 8),
                    _number(value),
                )
            )
    y_labels = [(_y(top * f, top), _number(top * f)) for f in (0, 0.5, 1)]
    return _frame(title, mark_safe("".join(parts)), y_labels, _x_ticks([b[0] for b in bars], xs, most=12))  # noqa: S308


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"
