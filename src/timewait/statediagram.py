"""The TCP state diagram (RFC 9293, Figure 5) drawn as SVG from the model's transition table.

Every row of :data:`timewait.model.states.TRANSITIONS` becomes one arrow, a ``<g>`` element
carrying ``data-from``, ``data-to`` and ``data-event``, so the picture cannot drift from the
model (``tests/test_statediagram.py`` compares the two); its label, the event over "/ " and
what is sent (as RFC 9293 writes them), is a ``<g class="tcp-label">`` with the same
attributes, drawn after every line so that no line crosses a label. The states of the closing
corner are highlighted. Resets and exhausted retransmissions, which lead from almost every
state to CLOSED, are drawn thin, grey and dashed without labels; the legend says so.

The layout is planned for the book's column: 620 units wide with 10.4-unit labels, it is
drawn at least 597 px wide (``least_width()``), narrower than the desktop theme's column.
"""

from __future__ import annotations

import math
from html import escape

from .model import states as S

WIDTH, HEIGHT = 620, 866
BOX_W, BOX_H = 112, 30
# Positions of the boxes' centres, laid out like RFC 9293's Figure 5 in three columns narrow
# enough for the book's column. CLOSED is drawn twice, as the figure does: at the top for
# opening, at the bottom for the ends of closing.
POSITIONS = {
    "CLOSED": (310, 40),
    "LISTEN": (310, 135),
    "SYN_RECEIVED": (75, 235),
    "SYN_SENT": (545, 235),
    "ESTABLISHED": (310, 335),
    "FIN_WAIT_1": (75, 445),
    "CLOSE_WAIT": (545, 445),
    "FIN_WAIT_2": (75, 605),
    "CLOSING": (310, 605),
    "LAST_ACK": (545, 605),
    "TIME_WAIT": (310, 725),
    "CLOSED ": (545, 815),
}
CLOSING_CORNER = (S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSING, S.TIME_WAIT, S.CLOSE_WAIT, S.LAST_ACK)
QUIET = (S.RCV_RST, S.GIVE_UP)  # drawn without labels
# Arrows drawn as a curve through a control point, to pass under a box a straight line
# would cross (FIN_WAIT_2's arrows to CLOSED would cross TIME_WAIT).
BENDS = {("FIN_WAIT_2", "CLOSED "): (230, 850)}
# Where a row's label goes: (x, y of its first line, text-anchor), placed by hand so that no
# label covers another; a row not listed gets its label beside the middle of its arrow.
LABEL_POS = {
    (S.CLOSED, S.APP_LISTEN): (300, 84, "end"),
    (S.LISTEN, S.APP_CLOSE): (320, 84, "start"),
    (S.CLOSED, S.APP_CONNECT): (452, 108, "start"),
    (S.SYN_SENT, S.APP_CLOSE): (398, 162, "start"),
    (S.LISTEN, S.RCV_SYN): (190, 152, "end"),
    (S.SYN_SENT, S.RCV_SYN): (310, 210, "middle"),
    (S.SYN_RECEIVED, S.RCV_ACK_OF_SYN): (160, 262, "start"),
    (S.SYN_SENT, S.RCV_SYN_ACK): (440, 300, "start"),
    (S.SYN_RECEIVED, S.APP_CLOSE): (85, 320, "start"),
    (S.ESTABLISHED, S.APP_CLOSE): (215, 408, "start"),
    (S.ESTABLISHED, S.RCV_FIN): (440, 372, "start"),
    (S.CLOSE_WAIT, S.APP_CLOSE): (555, 515, "start"),
    (S.TIME_WAIT, S.RCV_NEW_SYN): (205, 470, "start"),
    (S.FIN_WAIT_1, S.RCV_ACK_OF_FIN): (65, 512, "end"),
    (S.FIN_WAIT_1, S.RCV_FIN): (232, 530, "start"),
    (S.FIN_WAIT_1, S.RCV_FIN_ACK_OF_FIN): (190, 561, "middle"),
    (S.FIN_WAIT_2, S.RCV_FIN): (137, 617, "start"),
    (S.FIN_WAIT_2, S.TIMEOUT_FIN_WAIT_2): (180, 765, "end"),
    (S.CLOSING, S.RCV_ACK_OF_FIN): (320, 648, "start"),
    (S.TIME_WAIT, S.RCV_FIN): (402, 690, "start"),
    (S.TIME_WAIT, S.TIMEOUT_2MSL): (418, 792, "end"),
    (S.LAST_ACK, S.RCV_ACK_OF_FIN): (555, 700, "start"),
}
# Events written on two lines where one would be too wide.
EVENT_LINES = {
    S.RCV_ACK_OF_FIN: ("rcv ACK", "of FIN"),
    S.RCV_FIN_ACK_OF_FIN: ("rcv FIN +", "ACK of FIN"),
    S.TIMEOUT_FIN_WAIT_2: ("timeout", "FIN_WAIT_2"),
}
LINE_GAP = 12  # between a label's lines
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


def _label(event: str, actions: tuple) -> list:
    """A label's lines: the event, then "/ " and what is sent or started (RFC 9293 writes
    the event over a rule and the action under it)."""
    acts = [a.replace("start 2MSL timer", "2MSL timer").replace("delete TCB", "") for a in actions]
    acts = [a for a in acts if a]
    lines = list(EVENT_LINES.get(event, (event,)))
    return lines + (["/ " + ", ".join(acts)] if acts else [])


# The smallest text of the diagram (the arrows' labels and the legend) and how small it may
# be drawn. 10.4 keeps the least width (597 px) under the desktop theme's narrowest column
# (608 px, at a 1200 px wide window).
LABEL_SIZE = 10.4
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
        f'style="width:100%;max-width:{round(WIDTH * 1.25)}px;height:auto;min-width:{least_width()}px" '
        f'width="{WIDTH}" height="{HEIGHT}">',
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
    # The quiet arrows first, then the labelled ones, then the labels on top of every line
    # (each in a group of class tcp-label carrying its row's data-from/to/event).
    labels = []
    for state, nxt, event, actions, a, b, k in sorted(arrows(), key=lambda r: r[2] not in QUIET):
        quiet = event in QUIET
        colour = COLOURS["quiet"] if quiet else COLOURS["arrow"]
        head = "tcp-states-quiet" if quiet else "tcp-states-head"
        data = f'data-from="{escape(state)}" data-to="{escape(nxt)}" data-event="{escape(event)}"'
        attrs = f'class="tcp-arrow" {data}'
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
            if (a, b) in BENDS:  # a curve around a box in the way, through a control point
                cx, cy = BENDS[(a, b)]
                c = (cx + nx * shift, cy + ny * shift)
                p1 = _edge_point((x1 + nx * shift, y1 + ny * shift), c)
                p2 = _edge_point((x2 + nx * shift, y2 + ny * shift), c)
                path = f"M{p1[0]:.1f},{p1[1]:.1f} Q{c[0]:.1f},{c[1]:.1f} {p2[0]:.1f},{p2[1]:.1f}"
                out.append(f'<g {attrs}><path d="{path}" {style} marker-end="url(#{head})"/>')
                mid = ((p1[0] + 2 * c[0] + p2[0]) / 4, (p1[1] + 2 * c[1] + p2[1]) / 4)
            else:
                out.append(
                    f'<g {attrs}><line x1="{p1[0]:.1f}" y1="{p1[1]:.1f}" x2="{p2[0]:.1f}" '
                    f'y2="{p2[1]:.1f}" {style} marker-end="url(#{head})"/>'
                )
                mid = ((p1[0] + p2[0]) / 2, (p1[1] + p2[1]) / 2)
            # by default beside the middle of the arrow, on the side of its normal
            label_xy = (mid[0] + nx * 10, mid[1] + ny * 10 + 3)
            anchor = "start" if nx > 0.3 else "end" if nx < -0.3 else "middle"
        if (state, event) in LABEL_POS:
            *label_xy, anchor = LABEL_POS[(state, event)]
        out.append("</g>")
        if not quiet:
            x, y = label_xy
            lines = "".join(
                f'<tspan x="{x:.1f}" dy="{0 if i == 0 else LINE_GAP}">{escape(line)}</tspan>'
                for i, line in enumerate(_label(event, actions))
            )
            labels.append(
                f'<g class="tcp-label" {data}>'
                f'<text x="{x:.1f}" y="{y:.1f}" font-size="{LABEL_SIZE}" '
                f'text-anchor="{anchor}" fill="{COLOURS["text"]}" paint-order="stroke" '
                f'stroke="#ffffff" stroke-width="5" stroke-linejoin="round">{lines}</text></g>'
            )
    out += labels
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
        f'<text x="12" y="{HEIGHT - 12}" font-size="{LABEL_SIZE}" fill="#555555">Grey dashed '
        "arrows: rcv RST, or retransmissions exhausted (to CLOSED). Arrow labels: "
        "event / what is sent.</text>"
    )
    out.append("</svg>")
    return "\n".join(out)
