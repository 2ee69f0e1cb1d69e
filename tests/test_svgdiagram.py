"""The SVG renderer draws what plots.sequence_diagram draws: every segment labelled with its
flags, lost segments marked, states beside the lines, Okabe-Ito colours."""
import xml.etree.ElementTree as ET

from timewait.model import simulate
from timewait.plots import OKABE_ITO
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
    for seg, label in zip(r.trace, labels):
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


def test_timeline_has_one_bar_per_state_and_hatches_time_wait():
    r = simulate("four-way-close")
    svg = timeline_svg(r.timeline, until=r.settle_time * 1.2 + 1)
    root = ET.fromstring(svg)
    assert "url(#tw-hatch)" in svg
    bars = [e for e in root.iter(SVG + "rect") if e.get("stroke") == "#000000"]
    assert len(bars) == len(r.timeline)
    assert "TIME_WAIT" in _texts(svg)
