"""Sweep estimates drawn as an SVG line chart, written directly as text.

The sweep panel (:class:`timewait.widgets.SweepExplorer`) redraws on every change of a
control, also in a web page's Pyodide, where matplotlib cannot be served. Its chart follows
:func:`timewait.plots.sweep_curves`: one curve per value of the group, each with its own
colour (Okabe-Ito), marker, line style and legend entry, so that colour never carries the
meaning alone, and each estimate with its 95 % interval as a bar with caps. Every point
carries its numbers (hits, trials, estimate, interval) in a ``<title>``, shown on hover, and
the chart its description (alt text, :func:`timewait.plots.describe_sweep`) as
``aria-label`` and ``<title>``. Labels are horizontal and laid out so that none overlaps
another or leaves the picture.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Optional

from .plots import SERIES_COLOURS, describe_sweep

WIDTH = 640
X0, X1 = 64, WIDTH - 24  # the plot area's left and right edges
Y0, Y1 = 40, 290  # its top and bottom
LEFT = 24  # where the y label and the legend begin
P_LOW, P_HIGH = -0.03, 1.03  # the y range, as plots.sweep_curves sets it
FONT = "sans-serif"
# plots.SERIES_LINESTYLES as SVG dash patterns (scaled for a 1.6 px line), in the same order.
DASHES = ["", "6 3", "1.6 3", "8 3 1.6 3", "8 1.6 1.6 1.6 1.6 1.6", "1.6 5", "12 5"]


def _text_width(text: str, size: float) -> float:
    """A generous estimate of the width of ``text`` in a sans-serif font of ``size`` px."""
    return 0.62 * size * len(text) + 4


def _marker(i: int, x: float, y: float, colour: str) -> str:
    """Series ``i``'s marker at (x, y): plots.SERIES_MARKERS drawn in SVG, filled on even
    series and hollow on odd ones, as sweep_curves draws them."""
    fill = "#ffffff" if i % 2 else colour
    common = f'fill="{fill}" stroke="{colour}" stroke-width="1.5"'
    r = 4.5
    kind = i % 7
    if kind == 0:
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" {common}/>'
    if kind == 1:
        return f'<rect x="{x - r:.1f}" y="{y - r:.1f}" width="{2 * r}" height="{2 * r}" {common}/>'
    if kind in (2, 3, 4):
        pts = {
            2: [(0, -r - 1), (r, 0), (0, r + 1), (-r, 0)],
            3: [(0, -r - 1), (r, r), (-r, r)],
            4: [(0, r + 1), (r, -r), (-r, -r)],
        }[kind]
        return f'<polygon points="{" ".join(f"{x + dx:.1f},{y + dy:.1f}" for dx, dy in pts)}" {common}/>'
    d = r + 0.5
    if kind == 5:  # a thick plus
        path = f"M{x - d:.1f},{y:.1f}H{x + d:.1f}M{x:.1f},{y - d:.1f}V{y + d:.1f}"
    else:  # a thick cross
        path = (
            f"M{x - d:.1f},{y - d:.1f}L{x + d:.1f},{y + d:.1f}"
            f"M{x - d:.1f},{y + d:.1f}L{x + d:.1f},{y - d:.1f}"
        )
    return f'<path d="{path}" stroke="{colour}" stroke-width="3" fill="none"/>'


def sweep_svg(
    result, x: str, group: str, xlabel: str = "", ylabel: str = "P", label: Optional[Callable] = None
) -> str:
    """``result``'s estimates against ``x`` (a row key), one curve per value of ``group``,
    as an SVG line chart (a string). ``label(value)`` names a curve in the legend, by
    default ``"group = value"``."""
    label = label or (lambda g: f"{group} = {g}")
    groups = []
    for row in result.rows:
        if row[group] not in groups:
            groups.append(row[group])
    if len(groups) > len(SERIES_COLOURS):
        raise ValueError(
            f"group: at most {len(SERIES_COLOURS)} curves can be told apart, "
            f"got {len(groups)} values of {group!r}"
        )
    xs = sorted({row[x] for row in result.rows})
    if not xs:
        raise ValueError("result: has no rows to draw")
    lo, hi = xs[0], xs[-1]
    pad = (hi - lo) * 0.04 or 0.5
    lo, hi = lo - pad, hi + pad

    def px(v):
        return X0 + (v - lo) / (hi - lo) * (X1 - X0)

    def py(p):
        return Y1 - (p - P_LOW) / (P_HIGH - P_LOW) * (Y1 - Y0)

    # The legend, below the x label: entries left to right, wrapping onto new lines.
    legend, lx, ly = [], LEFT, Y1 + 68
    for i, g in enumerate(groups):
        text = str(label(g))
        w = 34 + _text_width(text, 12) + 16
        if lx + w > WIDTH - 8 and lx > LEFT:
            lx, ly = LEFT, ly + 20
        legend.append((i, text, lx, ly))
        lx += w
    height = ly + 16
    alt = escape(describe_sweep(result, x, group, xlabel, ylabel))
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" font-family="{FONT}" '
        f'aria-label="{alt}">',
        f"<title>{alt}</title>",
        f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>',
        f'<text x="{LEFT}" y="20" font-size="13">{escape(ylabel)}</text>',
    ]
    # y axis: gridlines and labels every 0.2
    for k in range(6):
        p = k / 5
        y = py(p)
        out.append(
            f'<line x1="{X0}" y1="{y:.1f}" x2="{X1}" y2="{y:.1f}" stroke="#dddddd"/>'
            f'<text x="{X0 - 8}" y="{y + 4:.1f}" text-anchor="end" font-size="12">'
            f"{p:.1f}</text>"
        )
    # x axis: a tick at every value swept, labelled where the label has room
    right_of_last = -1e9
    for v in xs:
        tx = px(v)
        text = f"{v:g}"
        w = _text_width(text, 12)
        out.append(
            f'<line x1="{tx:.1f}" y1="{Y0}" x2="{tx:.1f}" y2="{Y1}" stroke="#eeeeee"/>'
            f'<line x1="{tx:.1f}" y1="{Y1}" x2="{tx:.1f}" y2="{Y1 + 5}" '
            f'stroke="#000000"/>'
        )
        if tx - w / 2 > right_of_last + 4:
            out.append(
                f'<text x="{tx:.1f}" y="{Y1 + 19}" text-anchor="middle" font-size="12">{escape(text)}</text>'
            )
            right_of_last = tx + w / 2
    out.append(f'<rect x="{X0}" y="{Y0}" width="{X1 - X0}" height="{Y1 - Y0}" fill="none" stroke="#000000"/>')
    out.append(
        f'<text x="{(X0 + X1) / 2:.0f}" y="{Y1 + 42}" text-anchor="middle" '
        f'font-size="13">{escape(xlabel or x)}</text>'
    )
    # the curves: line, interval bars, then markers with their numbers
    for i, g in enumerate(groups):
        colour, dash = SERIES_COLOURS[i], DASHES[i]
        rows = sorted((r for r in result.rows if r[group] == g), key=lambda r: r[x])
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        points = " ".join(f"{px(r[x]):.1f},{py(r['p']):.1f}" for r in rows)
        out.append(
            f'<g><polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.6"{dash_attr}/>'
        )
        for r in rows:
            cx, top, bottom = px(r[x]), py(r["high"]), py(r["low"])
            out.append(
                f'<path d="M{cx:.1f},{top:.1f}V{bottom:.1f}M{cx - 3:.1f},{top:.1f}'
                f'H{cx + 3:.1f}M{cx - 3:.1f},{bottom:.1f}H{cx + 3:.1f}" '
                f'stroke="{colour}" stroke-width="1.2"/>'
            )
        for r in rows:
            numbers = (
                f"{label(g)}, {xlabel or x} {r[x]:g}: {r['hits']:,} of {r['trials']:,}"
                f" trials, estimate {r['p']:.4g}, 95 % interval {r['low']:.4g} to "
                f"{r['high']:.4g}"
            )
            out.append(f"<g><title>{escape(numbers)}</title>{_marker(i, px(r[x]), py(r['p']), colour)}</g>")
        out.append("</g>")
    for i, text, lx, ly in legend:
        colour, dash = SERIES_COLOURS[i], DASHES[i]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(
            f'<line x1="{lx}" y1="{ly - 4}" x2="{lx + 28}" y2="{ly - 4}" '
            f'stroke="{colour}" stroke-width="1.6"{dash_attr}/>'
            f"{_marker(i, lx + 14, ly - 4, colour)}"
            f'<text x="{lx + 34}" y="{ly}" font-size="12">{escape(text)}</text>'
        )
    out.append("</svg>")
    return "".join(out)
