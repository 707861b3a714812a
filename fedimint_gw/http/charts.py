"""Inline SVG bar charts drawn on the server: no script, nothing fetched by the browser."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 640
HEIGHT = 180
LEFT = 56  # room for the y axis labels
BOTTOM = 28  # room for the x axis labels
TOP = 10


@dataclass(frozen=True)
class Series:
    """One named row of values, one per label (None: no data that day)."""

    name: str
    css_class: str
    values: tuple[float | None, ...]


def bar_chart(chart_id: str, title: str, unit: str, labels: Sequence[str], series: Sequence[Series]) -> str:
    """Grouped bars, one group per label; every bar carries its value as `data-value` and a title."""
    peak = max((v for s in series for v in s.values if v is not None), default=0.0)
    scale = peak if peak > 0 else 1.0
    plot_w = WIDTH - LEFT - 8
    plot_h = HEIGHT - TOP - BOTTOM
    group_w = plot_w / max(1, len(labels))
    bar_w = max(1.0, (group_w - 4) / max(1, len(series)))
    parts = [
        f'<svg id="{escape(chart_id)}" class="chart" role="img" aria-label="{escape(title)}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - 8}" y2="{TOP + plot_h}"/>',
        f'<text class="tick" x="{LEFT - 4}" y="{TOP + 8}" text-anchor="end">'
        f"{escape(_short(peak))} {escape(unit)}</text>",
        f'<text class="tick" x="{LEFT - 4}" y="{TOP + plot_h}" text-anchor="end">0</text>',
    ]
    for i, label in enumerate(labels):
        x0 = LEFT + i * group_w + 2
        for j, s in enumerate(series):
            value = s.values[i] if i < len(s.values) else None
            height = 0.0 if value is None else plot_h * value / scale
            shown = "no data" if value is None else f"{value:g} {unit}"
            parts.append(
                f'<rect class="bar {escape(s.css_class)}" data-series="{escape(s.name)}" '
                f'data-label="{escape(label)}" data-value="{"" if value is None else f"{value:g}"}" '
                f'x="{x0 + j * bar_w:.1f}" y="{TOP + plot_h - height:.1f}" width="{bar_w:.1f}" '
                f'height="{height:.1f}"><title>{escape(f"{label} {s.name}: {shown}")}</title></rect>'
            )
        if (len(labels) - 1 - i) % 2 == 0 or len(labels) <= 7:
            parts.append(
                f'<text class="tick" x="{x0 + group_w / 2 - 2:.1f}" y="{HEIGHT - 10}" '
                f'text-anchor="middle">{escape(label[5:])}</text>'
            )
    parts.append("</svg>")
    legend = "".join(
        f'<span class="legend"><span class="swatch {escape(s.css_class)}"></span>{escape(s.name)}</span>'
        for s in series
    )
    return f"<figure><figcaption>{escape(title)} {legend}</figcaption>{''.join(parts)}</figure>"


def _short(value: float) -> str:
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:g}"
