"""The SVG renderer draws what plots.sequence_diagram draws: every segment labelled with its
flags, lost segments marked, states beside the lines, Okabe-Ito colours."""

import xml.etree.ElementTree as ET
from itertools import pairwise

from timewait.model import simulate
from timewait.plots import OKABE_ITO, STATE_COLOURS, describe_timeline, state_colour
from timewait.svgdiagram import sequence_svg, timeline_svg

SVG = "{http://www.w3.org/2000/svg}"


def _texts(svg):
    return [t.text for t in ET.fromstring(svg).iter(SVG + "text")]


def test_every_segment_is_labelled_in_order_and_the_lost_one_marked():
    r = simulate("lost-final-ack", time_wait_msl=0)
    svg = sequence_svg(r.trace, states=r.timeline)
    texts = _texts(svg)  # parses: well-formed XML
    labels = [t for t in texts if "seq=" in t]
    assert len(labels) == len(r.trace)
    for seg, label in zip(r.trace, labels, strict=True):
        assert label.startswith(seg.flags + " ")
    assert sum("[lost]" in t for t in labels) == sum(s.note == "dropped" for s in r.trace) == 1
    assert "RST" in labels[-1] and OKABE_ITO["vermillion"] in svg
    assert {"client", "server", "TIME_WAIT", "LAST_ACK"} <= set(texts)
    assert "Sequence diagram between client (left) and server (right)" in svg  # alt text


def test_labels_are_escaped():
    r = simulate("four-way-close")
    svg = sequence_svg(r.trace, title="a < b & c")
    assert "a &lt; b &amp; c" in svg
    ET.fromstring(svg)


def test_timeline_has_one_bar_per_state_shown_and_hatches_time_wait():
    r = simulate("four-way-close")
    until = r.settle_time * 1.2 + 1
    svg = timeline_svg(r.timeline, until=until)
    root = ET.fromstring(svg)
    assert "url(#tw-hatch)" in svg
    bars = [e for e in root.iter(SVG + "rect") if e.get("stroke") == "#000000"]
    # The client leaves TIME_WAIT after 60 s, beyond the chart's end: no bar for that CLOSED.
    assert len(bars) == sum(t <= until for t, _, _ in r.timeline) == len(r.timeline) - 1
    assert all(float(b.get("x")) + float(b.get("width")) <= 620.1 for b in bars)
    assert "TIME_WAIT" in _texts(svg)


def test_timeline_colours_states_as_the_matplotlib_timeline_does():
    r = simulate("lost-final-ack", final_ack_losses=4)
    svg = timeline_svg(r.timeline, until=4.0)
    root = ET.fromstring(svg)
    fills = {e.get("fill") for e in root.iter(SVG + "rect") if e.get("stroke") == "#000000"}
    assert {state_colour("LAST_ACK"), state_colour("TIME_WAIT")} <= fills
    assert fills <= set(STATE_COLOURS.values())


def test_timeline_names_every_wide_state_and_describes_all_of_them():
    r = simulate("lost-final-ack", time_wait_msl=0)
    svg = timeline_svg(r.timeline)
    root = ET.fromstring(svg)
    named = [t for t in _texts(svg) if t in STATE_COLOURS]
    assert {"LAST_ACK", "CLOSED"} <= set(named)
    # Connection set-up takes a few ms of a 0.2 s chart: too narrow to name on its bar...
    assert "SYN_SENT" not in named
    # ...and named in the description, with every other state, in the order entered.
    label = root.get("aria-label")
    assert label == root.find(SVG + "title").text == describe_timeline(r.timeline)
    client = label.split("client: ")[1].split(";")[0]
    assert client.index("FIN_WAIT_2") < client.index("TIME_WAIT") < client.rindex("CLOSED")
    for _t, _who, state in r.timeline:
        assert state in label


def _state_names(svg):
    """(x, y, anchor, text) of each state name beside an endpoint's line."""
    return [
        (float(t.get("x")), float(t.get("y")), t.get("text-anchor"), t.text)
        for t in ET.fromstring(svg).iter(SVG + "text")
        if t.get("font-style") == "italic"
    ]


def test_state_names_entered_together_stand_one_above_the_other():
    # In a four-way close the server enters CLOSE_WAIT and LAST_ACK before it sends its FIN:
    # both belong beside one row, and once were written on top of each other.
    for scenario in ("four-way-close", "merged-close", "simultaneous-close", "lost-fin", "lost-final-ack"):
        r = simulate(scenario)
        names = _state_names(sequence_svg(r.trace, states=r.timeline))
        assert len(names) == len(r.timeline)
        for side in ("start", "end"):
            ys = sorted(y for _, y, anchor, _ in names if anchor == side)
            # 11 px text: baselines at least 12 px apart never overlap.
            assert all(b - a >= 12 for a, b in pairwise(ys)), (scenario, side, ys)
