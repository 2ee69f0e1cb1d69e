"""Figures: sequence diagrams of a Trace (captured or simulated), state timelines and sweep
curves.

Colours come from the Okabe-Ito palette, which stays distinct for colour-blind readers, and
never carry meaning alone: every arrow is labelled with its flags, and a lost segment is
drawn dashed, stopped half-way, crossed and marked "lost"; every state bar is labelled with
its state, and TIME_WAIT is hatched as well; every sweep curve has its own marker and line
style and a legend entry.
"""

from __future__ import annotations

import re
from typing import Optional

from .trace import Trace

# matplotlib is imported where a figure is drawn: the colours and descriptions here are also
# used by the SVG panels (timewait.svgdiagram), which run in a web page's Pyodide without it.

OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
}


# Series in a line chart: colour, marker and line style all change from one to the next, so
# the curves stay apart in greyscale print and for every kind of colour vision.
SERIES_COLOURS = [OKABE_ITO[c] for c in ("blue", "vermillion", "green", "orange", "purple", "sky", "black")]
SERIES_MARKERS = ["o", "s", "D", "^", "v", "P", "X"]
SERIES_LINESTYLES = ["-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)), (0, (8, 3))]

# One colour per TCP state wherever a state is drawn, so a reader can learn them; the state's
# name is always written on it too.
# The opening states share a light grey: they are not what the course is about.
STATE_COLOURS = {
    "CLOSED": "#FFFFFF",
    "LISTEN": "#DDDDDD",
    "SYN_SENT": "#DDDDDD",
    "SYN_RECEIVED": "#DDDDDD",
    "ESTABLISHED": OKABE_ITO["green"],
    "FIN_WAIT_1": OKABE_ITO["orange"],
    "FIN_WAIT_2": OKABE_ITO["yellow"],
    "CLOSING": OKABE_ITO["purple"],
    "TIME_WAIT": OKABE_ITO["blue"],
    "CLOSE_WAIT": OKABE_ITO["sky"],
    "LAST_ACK": OKABE_ITO["vermillion"],
}
_OTHER_STATE = OKABE_ITO["purple"]


def state_colour(state: str) -> str:
    """The fill for ``state`` in timelines (matplotlib and SVG alike)."""
    return STATE_COLOURS.get(state, _OTHER_STATE)


def flag_colour(flags: str) -> str:
    f = set(flags.split("|"))
    if "RST" in f:
        return OKABE_ITO["vermillion"]
    if "SYN" in f:
        return OKABE_ITO["blue"]
    if "FIN" in f:
        return OKABE_ITO["orange"]
    if "PSH" in f:
        return OKABE_ITO["green"]
    return OKABE_ITO["black"]


def sequence_diagram(
    trace: Trace, ax=None, title: Optional[str] = None, states: Optional[list] = None, show_seq: bool = True
):
    """Draw ``trace`` as a sequence diagram: client on the left, server on the right, time
    running down one row per segment. ``states`` (``[(t, endpoint, state), ...]``) writes each
    endpoint's state changes beside its line. Returns the matplotlib Figure (laid out here
    when this function made it; a figure whose ``ax`` the caller gives is the caller's to
    lay out)."""
    left, right = trace.endpoints
    n = len(trace)
    own_figure = ax is None
    if ax is None:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7.5, 0.55 * n + 1.6))
    else:
        fig = ax.figure
    x = {left: 0.0, right: 1.0}
    top, bottom = 0.5, n + 0.5
    for name, xpos in x.items():
        ax.plot([xpos, xpos], [top - 0.4, bottom + 0.2], color="#555555", lw=1.2, zorder=1)
        ax.text(xpos, top - 0.55, name, ha="center", va="bottom", fontsize=11, weight="bold")
    for i, seg in enumerate(trace, start=1):
        x0, x1 = x[seg.src], x[seg.dst]
        y0, y1 = i - 0.2, i + 0.2
        colour = flag_colour(seg.flags)
        lost = seg.note in ("dropped", "held")
        label = seg.label() if show_seq else seg.flags
        if seg.note:
            label += f"  [{'lost' if seg.note == 'dropped' else seg.note}]"
        if lost:
            xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
            ax.plot([x0, xm], [y0, ym], color=colour, lw=1.6, ls="--", zorder=2)
            ax.plot([xm], [ym], marker="x", color=colour, ms=10, mew=2.5, zorder=3)
        else:
            ax.annotate(
                "",
                xy=(x1, y1),
                xytext=(x0, y0),
                zorder=2,
                arrowprops=dict(
                    arrowstyle="-|>", color=colour, lw=1.6, ls="--" if seg.note == "delivered late" else "-"
                ),
            )
        ax.text(
            0.5,
            i - 0.06,
            label,
            ha="center",
            va="bottom",
            fontsize=8.5,
            family="monospace",
            bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.85),
            zorder=4,
        )
    if states:
        _state_labels(ax, trace, states, x)
    ax.set_xlim(-0.45, 1.45)
    ax.set_ylim(bottom + 0.4, top - 0.9)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=12)
    if own_figure:
        fig.tight_layout()
    return fig


def _state_labels(ax, trace: Trace, states: list, x: dict) -> None:
    """Place each (t, endpoint, state) at the row of the first segment at or after t; states
    that fall on the same row of one endpoint are stacked in time order, not overprinted."""
    times = [s.t for s in trace]
    placed: dict = {}
    for t, endpoint, state in states:
        if endpoint not in x:
            continue
        row = next((i for i, ts in enumerate(times, start=1) if ts >= t - 1e-9), len(times) + 0.6)
        k = placed.get((endpoint, row), 0)
        placed[(endpoint, row)] = k + 1
        side = -1 if x[endpoint] == 0.0 else 1
        ax.text(
            x[endpoint] + side * 0.04,
            row - 0.35 + _STACKED_LABEL_STEP * k,
            state,
            ha="right" if side < 0 else "left",
            va="center",
            fontsize=8,
            color=OKABE_ITO["purple"],
            style="italic",
        )


# Rows are 0.55 in (about 40 pt) apart and state labels 8 pt high: three stacked labels fit
# above the next row's first.
_STACKED_LABEL_STEP = 0.3


def state_timeline(timeline: list, ax=None, title: Optional[str] = None, until: Optional[float] = None):
    """Draw each endpoint's states over time from ``[(t, endpoint, state), ...]`` as labelled
    horizontal bars (one row per endpoint; each state in its :func:`state_colour`, its name
    written on the bar, TIME_WAIT also hatched). Returns the Figure (laid out here when this
    function made it; a figure whose ``ax`` the caller gives is the caller's to lay out)."""
    endpoints = timeline_endpoints(timeline)
    own_figure = ax is None
    if ax is None:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(8, 0.9 * len(endpoints) + 1.2))
    else:
        fig = ax.figure
    end = timeline_end(timeline, until)
    labelled = []
    for row, e in enumerate(endpoints):
        for t, t_next, s in state_spans(timeline, e, end):
            bars = ax.barh(
                row,
                t_next - t,
                left=t,
                color=state_colour(s),
                edgecolor="black",
                height=0.6,
                hatch="//" if s == "TIME_WAIT" else None,
            )
            if t_next > t:
                text = ax.text(
                    (t + t_next) / 2,
                    row,
                    s,
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="black",
                    bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.85),
                )
                labelled.append((bars[0], text))
    ax.set_yticks(range(len(endpoints)), endpoints)
    ax.set_xlabel("time (s)")
    ax.set_xlim(0, end)
    ax.invert_yaxis()
    if title:
        ax.set_title(title)
    if own_figure:
        fig.tight_layout()
    # A state too brief to hold its name at this scale is not named on the chart (its name
    # would cover its neighbours); describe_timeline lists every state for the alt text.
    for bar, text in labelled:
        if text.get_window_extent().width > bar.get_window_extent().width:
            text.remove()
    return fig


def timeline_endpoints(timeline: list) -> list:
    endpoints = []
    for _, e, _ in timeline:
        if e not in endpoints:
            endpoints.append(e)
    return endpoints


def timeline_end(timeline: list, until: Optional[float]) -> float:
    if until is not None:
        return until or 1.0
    return max(t for t, _, _ in timeline) * 1.1 + 1e-9 if timeline else 1.0


def state_spans(timeline: list, endpoint: str, end: float) -> list:
    """``[(start, stop, state), ...]`` for one endpoint up to ``end``: the last state lasts
    to ``end``, and a state entered after ``end`` is left out."""
    # Sorted by time only: changes at the same instant keep the order they happened in.
    changes = sorted(((t, s) for t, who, s in timeline if who == endpoint), key=lambda c: c[0])
    return [
        (t, min(changes[k + 1][0] if k + 1 < len(changes) else end, end), s)
        for k, (t, s) in enumerate(changes)
        if t <= end
    ]


def describe_timeline(timeline: list, until: Optional[float] = None, title: str = "") -> str:
    """Alt text for a state timeline: each endpoint's states in order, with when they start."""
    end = timeline_end(timeline, until)
    rows = []
    for e in timeline_endpoints(timeline):
        spans = [f"{s} from {t:.3g} s" for t, _, s in state_spans(timeline, e, end)]
        rows.append(f"{e}: " + ", ".join(spans))
    head = f"{title}. " if title else ""
    return f"{head}State timeline up to {end:.3g} s, one row per endpoint; " + "; ".join(rows) + "."


def sweep_curves(result, x: str, group: str, ax=None, label=None):
    """A sweep's estimates against ``x``, one curve per value of ``group``, with their 95 %
    intervals as bars. Curves differ in colour, marker and line style, and each has a legend
    entry (``label(value)``, by default ``"group = value"``). Returns the Figure."""
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(7, 4))
    label = label or (lambda g: f"{group} = {g}")
    groups = []
    for row in result.rows:
        if row[group] not in groups:
            groups.append(row[group])
    if len(groups) > len(SERIES_MARKERS):
        raise ValueError(
            f"group: at most {len(SERIES_MARKERS)} curves can be told apart, "
            f"got {len(groups)} values of {group!r}"
        )
    for i, g in enumerate(groups):
        rows = [r for r in result.rows if r[group] == g]
        xs = [r[x] for r in rows]
        ps = [r["p"] for r in rows]
        err = [[r["p"] - r["low"] for r in rows], [r["high"] - r["p"] for r in rows]]
        ax.errorbar(
            xs,
            ps,
            yerr=err,
            color=SERIES_COLOURS[i],
            marker=SERIES_MARKERS[i],
            ls=SERIES_LINESTYLES[i],
            lw=1.6,
            ms=6,
            capsize=3,
            mfc="white" if i % 2 else SERIES_COLOURS[i],
            label=label(g),
        )
    ax.set_ylim(-0.03, 1.03)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, handlelength=3.5)
    return ax.figure


def describe_sweep(result, x: str, group: str, xlabel: str = "", ylabel: str = "P") -> str:
    """Alt text for :func:`sweep_curves`: for each curve, the estimate at every ``x``."""
    groups = []
    for row in result.rows:
        if row[group] not in groups:
            groups.append(row[group])
    curves = []
    for g in groups:
        points = ", ".join(f"{r['p']:.3g} at {r[x]:g}" for r in result.rows if r[group] == g)
        curves.append(f"{group} = {g}: {points}")
    return (
        f"{ylabel} against {xlabel or x}, one curve per {group}, each point with its 95 % "
        f"interval; " + "; ".join(curves) + "."
    )


def describe_trace(trace: Trace, title: str = "") -> str:
    """Alt text for a sequence diagram: what it shows, segment by segment, in words."""
    left, right = trace.endpoints
    parts = []
    for s in trace:
        text = f"{s.src} to {s.dst}: {s.flags}"
        if s.length:
            text += f" with {s.length} bytes"
        if s.note:
            text += f" ({'lost' if s.note == 'dropped' else s.note})"
        parts.append(text)
    head = f"{title}. " if title else ""
    return (
        f"{head}Sequence diagram between {left} (left) and {right} (right), time running "
        f"down, {len(parts)} segments: " + "; ".join(parts) + "."
    )


# Figures are inline SVG: sharp at any screen density and in print, text a reader can select,
# and far lighter than a PNG of the same size. The smallest text of a figure is drawn at least
# FIGURE_MIN_TEXT_PX CSS pixels high: on a narrow screen the figure stops shrinking there and
# scrolls sideways instead (course.css draws the scroll cue).
FIGURE_MIN_TEXT_PX = 10
# CSS pixels per point at the figure's natural width (the width the PNGs had at 90 dpi).
_PX_PER_PT = 1.25
_SANS = (
    "'DejaVu Sans', 'Bitstream Vera Sans', 'Computer Modern Sans Serif', 'Lucida Grande', "
    "'Verdana', 'Geneva', 'Lucid', 'Arial', 'Helvetica', 'Avant Garde', sans-serif"
)


def figure_svg(fig, alt: str) -> str:
    """``fig`` as an inline ``<svg>`` element named by ``alt`` (its text kept as text), sized to
    its natural width, shrinking with the column down to the width at which its smallest text
    is :data:`FIGURE_MIN_TEXT_PX` pixels high."""
    import html
    import io

    import matplotlib as mpl
    from matplotlib.text import Text

    width_pt = fig.get_figwidth() * 72
    height_pt = fig.get_figheight() * 72
    buf = io.StringIO()
    # A fixed salt keeps the ids of clip paths and markers the same from run to run.
    with mpl.rc_context({"svg.fonttype": "none", "svg.hashsalt": "timewait"}):
        fig.savefig(buf, format="svg", facecolor="none", metadata={"Date": None, "Creator": None})
    # After the drawing, which sets the ticks' labels.
    # Mathtext draws superscripts (a log axis's 10^-2) at 0.7 of the text's size.
    sizes = [
        t.get_fontsize() * (0.7 if "^" in t.get_text() and t.get_text().count("$") >= 2 else 1)
        for t in fig.findobj(Text)
        if t.get_visible() and t.get_text().strip()
    ]
    smallest = min(sizes, default=10.0)
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    # Group ids name matplotlib's artists (figure_1, text_3): unreferenced, and they would repeat
    # on a page with several figures.
    svg = re.sub(r'<g id="[^"]*"', "<g", svg)
    # An inline SVG's style sheet applies to the whole page: matplotlib's, which sets the line
    # joins of every element ("*"), is scoped to this figure, and the font list, written on
    # every text, is set once on the figure's root, where the texts inherit it.
    svg = svg.replace("*{stroke-linejoin", 'svg[data-figure="matplotlib"] *{stroke-linejoin', 1)
    svg = svg.replace(f"font-family: {_SANS}; ", "")
    natural = round(width_pt * _PX_PER_PT)
    least = round(width_pt * FIGURE_MIN_TEXT_PX / smallest)
    head = (
        f'<svg role="img" aria-label="{html.escape(alt, quote=True)}" data-figure="matplotlib" '
        f'font-family="{html.escape(_SANS, quote=True)}" '
        f'width="{natural}" height="{round(height_pt * _PX_PER_PT)}" '
        f'style="max-width:100%;height:auto;min-width:{least}px" '
    )
    return head + re.sub(r'width="[\d.]+pt" height="[\d.]+pt" ', "", svg[5:], count=1)


class FigureHTML:
    """A matplotlib figure shown as an HTML ``<figure>``: an inline SVG (:func:`figure_svg`)
    named by its alt text, with a caption.

    Notebooks display it, and chapters paste it from the notebook's stored output with
    myst-nb's ``glue`` directive, so the chapter shows the figure the notebook produced.
    """

    def __init__(self, fig, alt: str, caption: str = ""):
        import matplotlib.pyplot as plt

        self.svg = figure_svg(fig, alt)
        plt.close(fig)
        self.alt = alt
        self.caption = caption

    def _repr_html_(self) -> str:
        import html

        cap = f"<figcaption>{html.escape(self.caption)}</figcaption>" if self.caption else ""
        frame = '<div class="timewait-figure-frame" style="overflow-x:auto;background-color:#fff">'
        return f'<figure class="timewait-figure">{frame}{self.svg}</div>{cap}</figure>'

    def __repr__(self) -> str:
        return f"<figure: {self.caption or self.alt[:60]}>"
