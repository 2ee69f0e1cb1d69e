"""Sequence diagrams and state timelines written directly as SVG text.

The widgets redraw on every change of a control, and matplotlib needs well over 100 ms to
draw a sequence diagram and encode it as a PNG. The same picture written as SVG from the
:class:`~timewait.trace.Trace` takes about a millisecond, is exact at any zoom, and its
text can be selected and read by a screen reader. It follows :mod:`timewait.plots`
(which notebooks and the book use for static figures): client on the left, server on the
right, time running down one row per segment, colours from the Okabe-Ito palette
(:func:`timewait.plots.flag_colour`) but never carrying meaning alone -- every arrow is
labelled with its flags, and a lost segment is drawn dashed, stopped half-way, crossed
and labelled ``[lost]``. In the state timeline every state has its colour
(:func:`timewait.plots.state_colour`) and its name on its bar, and TIME_WAIT is also
hatched. Both pictures carry their description (alt text) as ``aria-label`` and ``<title>``.
"""

from __future__ import annotations

from html import escape
from typing import Optional

from .plots import (
    OKABE_ITO,
    describe_timeline,
    describe_trace,
    flag_colour,
    state_colour,
    state_spans,
    timeline_end,
    timeline_endpoints,
)
from .trace import Trace

ROW = 30  # pixels per segment
STACK = 13  # between state names stacked beside one row: their 11 px font boxes (1.16 em) do not meet
WIDTH = 640
X_LEFT, X_RIGHT = 170, 470  # the two endpoints' lines
FONT = "DejaVu Sans Mono, Menlo, Consolas, monospace"
_HALO = 'paint-order="stroke" stroke="#ffffff" stroke-width="3" stroke-linejoin="round"'


def _text_width(text: str, size: float) -> float:
    """A generous estimate of the width of ``text`` in a sans-serif font of ``size`` px, plus
    room for its halo; capitals and underscores are about 0.7 em wide."""
    return 0.72 * size * len(text) + 6


def _arrowhead(x1, y1, x0, y0, colour) -> str:
    """A filled triangle at (x1, y1) pointing away from (x0, y0)."""
    dx, dy = x1 - x0, y1 - y0
    norm = (dx * dx + dy * dy) ** 0.5 or 1.0
    ux, uy = dx / norm, dy / norm
    bx, by = x1 - 10 * ux, y1 - 10 * uy
    px, py = -uy * 4, ux * 4
    return (
        f'<polygon points="{x1:.1f},{y1:.1f} {bx + px:.1f},{by + py:.1f} '
        f'{bx - px:.1f},{by - py:.1f}" fill="{colour}"/>'
    )


def sequence_svg(
    trace: Trace, states: Optional[list] = None, show_seq: bool = True, title: Optional[str] = None
) -> str:
    """``trace`` as an SVG sequence diagram (a string). ``states`` (``[(t, endpoint,
    state), ...]``) writes each endpoint's state changes beside its line, at the row of the
    first segment at or after the change, as :func:`timewait.plots.sequence_diagram` does."""
    left, right = trace.endpoints
    x = {left: X_LEFT, right: X_RIGHT}
    n = len(trace)
    top = 44 if title else 22
    labels = _state_labels(trace, states or [], x)
    # Each row is tall enough for the state names stacked above its arrow, so that names
    # entered together (CLOSE_WAIT then LAST_ACK) stand one above the other, never on top.
    lines = {row: max(len(names) for (_, r), names in labels.items() if r == row) for _, row in labels}
    ys, y, previous = {}, top + 30 - ROW, 0
    for row in sorted(set(range(1, n + 1)) | set(lines)):
        y += ROW * (row - previous) + STACK * (lines.get(row, 1) - 1)
        ys[row], previous = y, row
    y_row = ys.__getitem__  # row i (1-based; n + 0.6 after the last segment): its label line
    last = max(ys.values())
    height = last + ROW + 10
    alt = describe_trace(trace, title or "")
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(alt)}" '
        f'font-family="{FONT}">',
        f"<title>{escape(alt)}</title>",
        f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>',
    ]
    if title:
        out.append(
            f'<text x="{WIDTH / 2}" y="20" text-anchor="middle" font-size="15" '
            f'font-family="sans-serif">{escape(title)}</text>'
        )
    bottom = last + 18
    for name, xpos in x.items():
        out.append(
            f'<line x1="{xpos}" y1="{top + 8}" x2="{xpos}" y2="{bottom}" '
            f'stroke="#555555" stroke-width="1.5"/>'
        )
        out.append(
            f'<text x="{xpos}" y="{top + 2}" text-anchor="middle" font-size="14" '
            f'font-weight="bold" font-family="sans-serif">{escape(name)}</text>'
        )
    for i, seg in enumerate(trace, start=1):
        x0, x1 = x[seg.src], x[seg.dst]
        yl = y_row(i)
        y0, y1 = yl - 6, yl + 6
        colour = flag_colour(seg.flags)
        label = seg.label() if show_seq else seg.flags
        if seg.note:
            label += f"  [{'lost' if seg.note == 'dropped' else seg.note}]"
        if seg.note in ("dropped", "held"):
            xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
            out.append(
                f'<line x1="{x0}" y1="{y0}" x2="{xm}" y2="{ym}" stroke="{colour}" '
                f'stroke-width="2" stroke-dasharray="6,4"/>'
            )
            out.append(
                f'<path d="M{xm - 6},{ym - 6}L{xm + 6},{ym + 6}M{xm - 6},{ym + 6}'
                f'L{xm + 6},{ym - 6}" stroke="{colour}" stroke-width="3"/>'
            )
        else:
            dash = ' stroke-dasharray="6,4"' if seg.note == "delivered late" else ""
            out.append(
                f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y1}" stroke="{colour}" stroke-width="2"{dash}/>'
            )
            out.append(_arrowhead(x1, y1, x0, y0, colour))
        out.append(
            f'<text x="{WIDTH / 2}" y="{yl - 9}" text-anchor="middle" font-size="11" '
            f"{_HALO}>{escape(label)}</text>"
        )
    for (endpoint, row), names in labels.items():
        left_side = x[endpoint] == X_LEFT
        xs = x[endpoint] + (-8 if left_side else 8)
        for k, state in enumerate(names):  # the first entered on top, the latest nearest
            ys_ = y_row(row) - 14 - STACK * (len(names) - 1 - k)
            out.append(
                f'<text x="{xs}" y="{ys_:.0f}" font-size="11" '
                f'text-anchor="{"end" if left_side else "start"}" font-style="italic" '
                f'fill="{OKABE_ITO["purple"]}" font-family="sans-serif">'
                f"{escape(state)}</text>"
            )
    out.append("</svg>")
    return "".join(out)


def _state_labels(trace: Trace, states: list, x: dict) -> dict:
    """``{(endpoint, row): [state, ...]}``: each state change at the row of the first segment
    at or after it (``n + 0.6`` after the last), in the order entered."""
    times = [s.t for s in trace]
    n = len(times)
    labels = {}
    for t, endpoint, state in states:
        if endpoint not in x:
            continue
        row = next((i for i, ts in enumerate(times, start=1) if ts >= t - 1e-9), n + 0.6)
        labels.setdefault((endpoint, row), []).append(state)
    return labels


def timeline_svg(timeline: list, until: Optional[float] = None) -> str:
    """Each endpoint's states over time from ``[(t, endpoint, state), ...]`` as labelled
    bars, one row per endpoint, drawn as :func:`timewait.plots.state_timeline` draws them:
    the same colours, TIME_WAIT hatched, and a state's name on its bar where it fits (every
    state is named in the description)."""
    endpoints = timeline_endpoints(timeline)
    end = timeline_end(timeline, until)
    x0, x1, row_h = 70, WIDTH - 20, 34
    height = 20 + row_h * len(endpoints) + 40
    sx = (x1 - x0) / end
    alt = escape(describe_timeline(timeline, until))
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" font-family="sans-serif" '
        f'aria-label="{alt}">',
        f"<title>{alt}</title>",
        '<defs><pattern id="tw-hatch" width="8" height="8" patternUnits="userSpaceOnUse">'
        '<path d="M0,8L8,0M-2,2L2,-2M6,10L10,6" stroke="#000000" stroke-width="1"/>'
        "</pattern></defs>",
        f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>',
    ]
    for row, e in enumerate(endpoints):
        y = 20 + row * row_h
        out.append(f'<text x="{x0 - 6}" y="{y + 16}" text-anchor="end" font-size="12">{escape(e)}</text>')
        for t, t_next, s in state_spans(timeline, e, end):
            w = (t_next - t) * sx
            bx = x0 + t * sx
            out.append(
                f'<rect x="{bx:.1f}" y="{y}" width="{w:.1f}" height="22" '
                f'fill="{state_colour(s)}" stroke="#000000"/>'
            )
            if s == "TIME_WAIT":
                out.append(f'<rect x="{bx:.1f}" y="{y}" width="{w:.1f}" height="22" fill="url(#tw-hatch)"/>')
            if w >= _text_width(s, 10):
                out.append(
                    f'<text x="{bx + w / 2:.1f}" y="{y + 15}" text-anchor="middle" '
                    f'font-size="10" {_HALO}>{escape(s)}</text>'
                )
    axis_y = 20 + row_h * len(endpoints) + 4
    out.append(f'<line x1="{x0}" y1="{axis_y}" x2="{x1}" y2="{axis_y}" stroke="#000000"/>')
    for k in range(6):
        t = end * k / 5
        tx = x0 + t * sx
        out.append(
            f'<line x1="{tx:.1f}" y1="{axis_y}" x2="{tx:.1f}" y2="{axis_y + 4}" '
            f'stroke="#000000"/><text x="{tx:.1f}" y="{axis_y + 16}" '
            f'text-anchor="middle" font-size="10">{t:.3g}</text>'
        )
    out.append(
        f'<text x="{(x0 + x1) / 2}" y="{axis_y + 32}" text-anchor="middle" '
        f'font-size="11">time (s)</text></svg>'
    )
    return "".join(out)
