"""The TCP state diagram (RFC 9293, Figure 5) drawn as SVG from the model's transition table.

Every row of :data:`timewait.model.states.TRANSITIONS` becomes one arrow, a ``<g>`` element
carrying ``data-from``, ``data-to`` and ``data-event``, so the picture cannot drift from the
model (``tests/test_statediagram.py`` compares the two). The states of the closing corner are
highlighted. Resets and exhausted retransmissions, which lead from almost every state to
CLOSED, are drawn thin, grey and dashed without labels; the legend says so.
"""

from __future__ import annotations

import math
from html import escape

from .model import states as S

WIDTH, HEIGHT = 820, 740
BOX_W, BOX_H = 116, 30
# Positions of the boxes' centres, laid out like RFC 9293's Figure 5. CLOSED is drawn twice,
# as the figure does: at the top for opening, at the bottom for the ends of closing.
POSITIONS = {
    "CLOSED": (410, 40),
    "LISTEN": (410, 125),
    "SYN_RECEIVED": (170, 210),
    "SYN_SENT": (650, 210),
    "ESTABLISHED": (410, 295),
    "FIN_WAIT_1": (170, 385),
    "CLOSE_WAIT": (650, 385),
    "FIN_WAIT_2": (170, 495),
    "CLOSING": (410, 495),
    "LAST_ACK": (650, 495),
    "TIME_WAIT": (410, 610),
    "CLOSED ": (410, 700),
}
CLOSING_CORNER = (S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSING, S.TIME_WAIT, S.CLOSE_WAIT, S.LAST_ACK)
QUIET = (S.RCV_RST, S.GIVE_UP)  # drawn without labels
# Where along an arrow its label sits (0 at the start), where the middle is crowded.
LABEL_AT = {
    (S.FIN_WAIT_1, S.RCV_FIN_ACK_OF_FIN): 0.28,
    (S.TIME_WAIT, S.RCV_NEW_SYN): 0.55,
    (S.FIN_WAIT_1, S.RCV_FIN): 0.62,
    (S.FIN_WAIT_2, S.TIMEOUT_FIN_WAIT_2): 0.42,
    (S.FIN_WAIT_2, S.RCV_FIN): 0.4,
}
# Labels moved to the other side of their arrow, or anchored at their start, to stay clear.
LABEL_FLIP = {(S.CLOSING, S.RCV_ACK_OF_FIN)}
LABEL_START = {(S.TIME_WAIT, S.RCV_NEW_SYN)}
# Rows whose CLOSED is the bottom box: the ends of a close.
BOTTOM_CLOSED_FROM = frozenset(CLOSING_CORNER) | {S.ESTABLISHED}
COLOURS = {"arrow": "#0072B2", "quiet": "#999999", "corner": "#FFF1D6", "box": "#FFFFFF", "text": "#222222"}


def _node(state: str, origin: str) -> str:
    """The box a row's arrow ends at (the bottom CLOSED for the ends of a close)."""
    if state == S.CLOSED and origin in BOTTOM_CLOSED_FROM:
        return "CLOSED "
    return state


def _edge_point(center, toward) -> tuple:
    """Where the line from ``center`` toward ``toward`` leaves the box around ``center``."""
    (x, y), (tx, ty) = center, toward
    dx, dy = tx - x, ty - y
    if dx == dy == 0:
        return x, y
    sx = (BOX_W / 2) / abs(dx) if dx else math.inf
    sy = (BOX_H / 2) / abs(dy) if dy else math.inf
    s = min(sx, sy)
    return x + dx * s, y + dy * s


def arrows() -> list:
    """One ``(from, to, event, actions, from_box, to_box, offset)`` per table row; ``offset``
    separates parallel arrows between the same two boxes."""
    rows, seen = [], {}
    for (state, event), (nxt, actions) in S.TRANSITIONS.items():
        a, b = _node(state, state), _node(nxt, state)
        key = tuple(sorted((a, b)))
        k = seen.get(key, 0)
        seen[key] = k + 1
        rows.append((state, nxt, event, actions, a, b, k))
    return rows


def _label(event: str, actions: tuple) -> str:
    acts = [a.replace("start 2MSL timer", "2MSL timer").replace("delete TCB", "") for a in actions]
    acts = [a for a in acts if a]
    return event + (" / " + ", ".join(acts) if acts else "")


# The smallest text of the diagram (the arrows' labels) and how small it may be drawn.
LABEL_SIZE = 9.5
MIN_TEXT_PX = 10


def least_width() -> int:
    """The width in CSS pixels below which the arrows' labels would be drawn under
    MIN_TEXT_PX: the diagram stops shrinking there (its frame scrolls)."""
    return math.ceil(WIDTH * MIN_TEXT_PX / LABEL_SIZE)


def state_diagram_svg(title: str = "TCP connection states (RFC 9293, Figure 5)") -> str:
    """The diagram as an SVG document (a string), with a title and a description for
    screen readers."""
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-labelledby="tcp-states-title tcp-states-desc" '
        f'class="course-state-diagram" font-family="sans-serif" '
        f'style="max-width:100%;height:auto;min-width:{least_width()}px" width="{WIDTH}" height="{HEIGHT}">',
        f'<title id="tcp-states-title">{escape(title)}</title>',
        '<desc id="tcp-states-desc">'
        + escape(
            "State diagram with one arrow per row of the course model's transition table. "
            "The closing corner (FIN_WAIT_1, FIN_WAIT_2, CLOSING, TIME_WAIT, CLOSE_WAIT, "
            "LAST_ACK) is highlighted. The active closer goes ESTABLISHED, FIN_WAIT_1, "
            "FIN_WAIT_2 (or CLOSING), TIME_WAIT, then CLOSED after the 2MSL timeout; the "
            "passive closer goes ESTABLISHED, CLOSE_WAIT, LAST_ACK, CLOSED."
        )
        + "</desc>",
        '<defs><marker id="tcp-states-head" viewBox="0 0 10 10" refX="10" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        f'<path d="M0,0 L10,5 L0,10 z" fill="{COLOURS["arrow"]}"/></marker>'
        '<marker id="tcp-states-quiet" viewBox="0 0 10 10" refX="10" refY="5" '
        'markerWidth="5" markerHeight="5" orient="auto-start-reverse">'
        f'<path d="M0,0 L10,5 L0,10 z" fill="{COLOURS["quiet"]}"/></marker></defs>',
    ]
    # the closing corner
    xs = [POSITIONS[s][0] for s in CLOSING_CORNER]
    ys = [POSITIONS[s][1] for s in CLOSING_CORNER]
    out.append(
        f'<rect x="{min(xs) - BOX_W / 2 - 14}" y="{min(ys) - BOX_H / 2 - 14}" '
        f'width="{max(xs) - min(xs) + BOX_W + 28}" height="{max(ys) - min(ys) + BOX_H + 28}" '
        f'rx="12" fill="{COLOURS["corner"]}"/>'
    )
    out.append(
        f'<text x="{min(xs) - BOX_W / 2 - 6}" y="{max(ys) + BOX_H / 2 + 10}" '
        f'font-size="11" fill="#8a5a00">the closing corner</text>'
    )
    for state, nxt, event, actions, a, b, k in arrows():
        quiet = event in QUIET
        colour = COLOURS["quiet"] if quiet else COLOURS["arrow"]
        head = "tcp-states-quiet" if quiet else "tcp-states-head"
        attrs = (
            f'class="tcp-arrow" data-from="{escape(state)}" data-to="{escape(nxt)}" '
            f'data-event="{escape(event)}"'
        )
        style = f'stroke="{colour}" fill="none" stroke-width="{1 if quiet else 1.6}"' + (
            ' stroke-dasharray="4 3"' if quiet else ""
        )
        anchor = "middle"
        if a == b:  # a loop: TIME_WAIT answering a retransmitted FIN
            x, y = POSITIONS[a]
            x0, x1 = x + BOX_W / 2 - 20, x + BOX_W / 2
            path = f"M{x0},{y - BOX_H / 2} C{x0 + 30},{y - 45} {x1 + 45},{y - 5} {x1},{y}"
            label_xy = (x1 + 40, y - 26)
            anchor = "start"
            out.append(f'<g {attrs}><path d="{path}" {style} marker-end="url(#{head})"/>')
        else:
            (x1, y1), (x2, y2) = POSITIONS[a], POSITIONS[b]
            length = math.hypot(x2 - x1, y2 - y1)
            nx, ny = -(y2 - y1) / length, (x2 - x1) / length  # unit normal
            shift = (k - 0.0) * 7 * (1 if (a, b) == tuple(sorted((a, b))) else -1)
            p1 = _edge_point((x1 + nx * shift, y1 + ny * shift), (x2 + nx * shift, y2 + ny * shift))
            p2 = _edge_point((x2 + nx * shift, y2 + ny * shift), (x1 + nx * shift, y1 + ny * shift))
            out.append(
                f'<g {attrs}><line x1="{p1[0]:.1f}" y1="{p1[1]:.1f}" x2="{p2[0]:.1f}" '
                f'y2="{p2[1]:.1f}" {style} marker-end="url(#{head})"/>'
            )
            t = LABEL_AT.get((state, event), 0.5)
            # parallel arrows: labels on either side, by a normal fixed for the pair of boxes
            (sx1, sy1), (sx2, sy2) = (POSITIONS[n] for n in sorted((a, b)))
            sl = math.hypot(sx2 - sx1, sy2 - sy1)
            mx, my = -(sy2 - sy1) / sl, (sx2 - sx1) / sl
            side = (1 if k % 2 == 0 else -1) * (-1 if (state, event) in LABEL_FLIP else 1)
            label_xy = (
                p1[0] + (p2[0] - p1[0]) * t + mx * 10 * side,
                p1[1] + (p2[1] - p1[1]) * t + my * 10 * side + 3,
            )
            if abs(x2 - x1) < 1:  # vertical: the label beside the line
                anchor = "start" if mx * side > 0 else "end"
            if (state, event) in LABEL_START:
                anchor = "start"
        if not quiet:
            out.append(
                f'<text x="{label_xy[0]:.1f}" y="{label_xy[1]:.1f}" font-size="{LABEL_SIZE}" '
                f'text-anchor="{anchor}" fill="{COLOURS["text"]}" '
                f'paint-order="stroke" stroke="#ffffff" stroke-width="3">'
                f"{escape(_label(event, actions))}</text>"
            )
        out.append("</g>")
    for name, (x, y) in POSITIONS.items():
        state = name.strip()
        out.append(
            f'<g class="tcp-state" data-state="{state}"><rect x="{x - BOX_W / 2}" '
            f'y="{y - BOX_H / 2}" width="{BOX_W}" height="{BOX_H}" rx="6" '
            f'fill="{COLOURS["box"]}" stroke="#333333" stroke-width="1.2"/>'
            f'<text x="{x}" y="{y + 4}" font-size="12" text-anchor="middle" '
            f'font-weight="bold" fill="{COLOURS["text"]}">{state}</text></g>'
        )
    out.append(
        f'<text x="12" y="{HEIGHT - 12}" font-size="10" fill="#555555">Grey dashed '
        "arrows: rcv RST, or retransmissions exhausted (to CLOSED). Arrow labels: "
        "event / what is sent.</text>"
    )
    out.append("</svg>")
    return "\n".join(out)
