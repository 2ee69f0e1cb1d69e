"""Figures: sequence diagrams of a Trace (captured or simulated) and state timelines.

Colours come from the Okabe-Ito palette, which stays distinct for colour-blind readers, and
never carry meaning alone: every arrow is labelled with its flags, and a lost segment is
drawn dashed, stopped half-way and marked "lost".
"""
from __future__ import annotations

from typing import Optional

import matplotlib.pyplot as plt

from .trace import Trace

OKABE_ITO = {"black": "#000000", "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73",
             "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7"}


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


def sequence_diagram(trace: Trace, ax=None, title: Optional[str] = None,
                     states: Optional[list] = None, show_seq: bool = True):
    """Draw ``trace`` as a sequence diagram: client on the left, server on the right, time
    running down one row per segment. ``states`` (``[(t, endpoint, state), ...]``) writes each
    endpoint's state changes beside its line. Returns the matplotlib Figure."""
    left, right = trace.endpoints
    n = len(trace)
    if ax is None:
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
            ax.annotate("", xy=(x1, y1), xytext=(x0, y0), zorder=2,
                        arrowprops=dict(arrowstyle="-|>", color=colour, lw=1.6,
                                        ls="--" if seg.note == "delivered late" else "-"))
        ax.text(0.5, i - 0.06, label, ha="center", va="bottom", fontsize=8.5, family="monospace",
                bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.85), zorder=4)
    if states:
        _state_labels(ax, trace, states, x)
    ax.set_xlim(-0.45, 1.45)
    ax.set_ylim(bottom + 0.4, top - 0.9)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=12)
    fig.tight_layout()
    return fig


def _state_labels(ax, trace: Trace, states: list, x: dict) -> None:
    """Place each (t, endpoint, state) at the row of the first segment at or after t."""
    times = [s.t for s in trace]
    for t, endpoint, state in states:
        if endpoint not in x:
            continue
        row = next((i for i, ts in enumerate(times, start=1) if ts >= t - 1e-9), len(times) + 0.6)
        side = -1 if x[endpoint] == 0.0 else 1
        ax.text(x[endpoint] + side * 0.04, row - 0.35, state, ha="right" if side < 0 else "left",
                va="center", fontsize=8, color=OKABE_ITO["purple"], style="italic")


def state_timeline(timeline: list, ax=None, title: Optional[str] = None, until: Optional[float] = None):
    """Draw each endpoint's states over time from ``[(t, endpoint, state), ...]`` as labelled
    horizontal bars (one row per endpoint). Returns the Figure."""
    endpoints = []
    for _, e, _ in timeline:
        if e not in endpoints:
            endpoints.append(e)
    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 0.9 * len(endpoints) + 1.2))
    else:
        fig = ax.figure
    end = until if until is not None else (max(t for t, _, _ in timeline) * 1.1 + 1e-9 if timeline else 1)
    palette = list(OKABE_ITO.values())[1:]
    colours = {}
    for row, e in enumerate(endpoints):
        changes = sorted((t, s) for t, who, s in timeline if who == e)
        for k, (t, s) in enumerate(changes):
            t_next = changes[k + 1][0] if k + 1 < len(changes) else end
            colour = colours.setdefault(s, palette[len(colours) % len(palette)])
            ax.barh(row, max(t_next - t, 0), left=t, color=colour, edgecolor="black", height=0.6,
                    hatch="//" if s == "TIME_WAIT" else None)
            if t_next > t:
                ax.text((t + t_next) / 2, row, s, ha="center", va="center", fontsize=8,
                        bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.8))
    ax.set_yticks(range(len(endpoints)), endpoints)
    ax.set_xlabel("time (s)")
    ax.invert_yaxis()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


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
    return (f"{head}Sequence diagram between {left} (left) and {right} (right), time running "
            f"down, {len(parts)} segments: " + "; ".join(parts) + ".")


class FigureHTML:
    """A matplotlib figure shown as an HTML ``<figure>`` with alt text and a caption.

    Notebooks display it, and chapters paste it from the notebook's stored output with
    myst-nb's ``glue`` directive, so the chapter shows the figure the notebook produced.
    """

    def __init__(self, fig, alt: str, caption: str = ""):
        import base64
        import io
        import html

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90, metadata={"Software": None})
        plt.close(fig)
        self.png = buf.getvalue()
        self.alt = alt
        self.caption = caption
        self._b64 = base64.b64encode(self.png).decode()
        self._html = html

    def _repr_html_(self) -> str:
        esc = self._html.escape
        cap = f"<figcaption>{esc(self.caption)}</figcaption>" if self.caption else ""
        return (f'<figure class="timewait-figure"><img src="data:image/png;base64,{self._b64}" '
                f'alt="{esc(self.alt, quote=True)}" style="max-width:100%"/>{cap}</figure>')

    def _repr_png_(self) -> bytes:
        return self.png

    def __repr__(self) -> str:
        return f"<figure: {self.caption or self.alt[:60]}>"
