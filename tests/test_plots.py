"""Figures a colour-blind reader can read: colours from the Okabe-Ito palette that stay apart
under simulated colour-vision deficiencies, and no information carried by colour alone --
flags, states and curves are all named in text, and curves differ in marker and line style."""

import itertools
import re
import xml.etree.ElementTree as ET

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from timewait.model import simulate  # noqa: E402
from timewait.model.sweeps import old_duplicate_sweep, reset_sweep  # noqa: E402
from timewait.plots import (  # noqa: E402
    FIGURE_MIN_TEXT_PX,
    OKABE_ITO,
    SERIES_COLOURS,
    STATE_COLOURS,
    FigureHTML,
    describe_timeline,
    describe_trace,
    flag_colour,
    sequence_diagram,
    state_colour,
    state_timeline,
    sweep_curves,
)

# Machado, Oliveira & Fernandes (2009), "A physiologically-based model for simulation of
# color vision deficiency", severity 1.0; applied to linear RGB.
CVD = {
    "protanopia": [
        [0.152286, 1.052583, -0.204868],
        [0.114503, 0.786281, 0.099216],
        [-0.003882, -0.048116, 1.051998],
    ],
    "deuteranopia": [
        [0.367322, 0.860646, -0.227968],
        [0.280085, 0.672501, 0.047413],
        [-0.011820, 0.042940, 0.968881],
    ],
    "tritanopia": [
        [1.255528, -0.076749, -0.178779],
        [-0.078411, 0.930809, 0.147602],
        [0.004733, 0.691367, 0.303900],
    ],
    "typical vision": np.eye(3),
}
MIN_DELTA_E = 12  # CIE76 distance; matplotlib's default cycle comes down to about 5


def _lab(colour: str, vision) -> np.ndarray:
    srgb = np.array([int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    linear = np.clip(np.array(vision) @ linear, 0, 1)
    xyz = (
        np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
        @ linear
        / np.array([0.95047, 1.0, 1.08883])
    )
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _closest_pair(colours):
    """The smallest distance between two of ``colours`` under any simulated vision."""
    return min(
        (float(np.linalg.norm(_lab(a, m) - _lab(b, m))), name, a, b)
        for name, m in CVD.items()
        for a, b in itertools.combinations(set(colours), 2)
    )


def _hex(colour) -> str:
    return matplotlib.colors.to_hex(colour).upper()


def test_the_distance_check_rejects_matplotlibs_default_colours():
    default = [c["color"] for c in matplotlib.rcParams["axes.prop_cycle"]][:7]
    assert _closest_pair([_hex(c) for c in default])[0] < MIN_DELTA_E


@pytest.mark.parametrize(
    "what, colours",
    [
        ("sweep curves", SERIES_COLOURS),
        ("segment flags", [flag_colour(f) for f in ("SYN", "FIN|ACK", "RST", "PSH|ACK", "ACK")]),
        (
            "closing states",
            [
                STATE_COLOURS[s]
                for s in (
                    "ESTABLISHED",
                    "FIN_WAIT_1",
                    "FIN_WAIT_2",
                    "CLOSING",
                    "TIME_WAIT",
                    "CLOSE_WAIT",
                    "LAST_ACK",
                    "CLOSED",
                )
            ],
        ),
    ],
)
def test_colours_stay_apart_for_colour_blind_readers(what, colours):
    distance, vision, a, b = _closest_pair(colours)
    assert distance >= MIN_DELTA_E, f"{what}: {a} and {b} are {distance:.1f} apart for {vision}"


def _sweep():
    return reset_sweep(
        final_ack_loss=(0.1, 0.3, 0.5), time_wait_msl=(0.0, 0.01, 0.1, 1.0), trials=500, msl=30.0, seed=1
    )


def test_every_sweep_curve_has_a_label_and_its_own_marker_and_line_style():
    fig = sweep_curves(_sweep(), "time_wait_msl", "final_ack_loss")
    ax = fig.axes[0]
    curves = [c.lines[0] for c in ax.containers]  # each errorbar's data line
    assert len(curves) == 3
    labels = [c.get_label() for c in ax.containers]
    assert labels == ["final_ack_loss = 0.1", "final_ack_loss = 0.3", "final_ack_loss = 0.5"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == labels
    assert len({c.get_marker() for c in curves}) == 3
    assert len({str(c.get_linestyle()) for c in curves}) == 3
    assert {_hex(c.get_color()) for c in curves} <= set(OKABE_ITO.values())
    assert len({_hex(c.get_color()) for c in curves}) == 3


def test_sweep_curves_take_readable_labels_and_refuse_more_curves_than_styles():
    r = old_duplicate_sweep(
        (0.0, 1.0), reconnect_delay=(0.0,), isn=("fixed", "clock", "random"), trials=200, seed=0
    )
    fig = sweep_curves(r, "time_wait_msl", "isn", label=lambda g: f"{g} ISNs")
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == [
        "fixed ISNs",
        "clock ISNs",
        "random ISNs",
    ]
    many = reset_sweep(
        final_ack_loss=tuple(k / 10 for k in range(8)), time_wait_msl=(0.0,), trials=10, msl=30.0, seed=0
    )
    with pytest.raises(ValueError, match="group: at most 7 curves"):
        sweep_curves(many, "time_wait_msl", "final_ack_loss")


def test_sequence_diagram_names_every_segment_and_marks_the_lost_one_without_colour():
    r = simulate("lost-final-ack", time_wait_msl=0)
    ax = sequence_diagram(r.trace).axes[0]
    texts = [t.get_text() for t in ax.texts]
    labels = [t for t in texts if "seq=" in t]
    assert [label.split(" ")[0] for label in labels] == [s.flags for s in r.trace]
    lost = [label for label in labels if "[lost]" in label]
    assert len(lost) == 1 == sum(s.note == "dropped" for s in r.trace)
    # The lost segment is also drawn differently: a dashed half-arrow ending in a cross.
    assert any(line.get_linestyle() == "--" for line in ax.lines)
    assert any(line.get_marker() == "x" for line in ax.lines)
    arrows = [p.get_edgecolor() for p in ax.patches]
    assert {_hex(c) for c in arrows} <= set(OKABE_ITO.values())


def test_state_timeline_names_states_and_hatches_time_wait():
    r = simulate("lost-final-ack", final_ack_losses=4)
    view = [(t, who, s) for t, who, s in r.timeline if t >= 0.003]
    fig = state_timeline(view, until=4.0)
    ax = fig.axes[0]
    bars = ax.patches
    assert {_hex(b.get_facecolor()) for b in bars} == {
        state_colour(s)
        for s in ("ESTABLISHED", "CLOSE_WAIT", "LAST_ACK", "CLOSED", "FIN_WAIT_2", "TIME_WAIT")
    }
    hatched = [b for b in bars if b.get_hatch()]
    assert [_hex(b.get_facecolor()) for b in hatched] == [state_colour("TIME_WAIT")]
    assert sorted(t.get_text() for t in ax.texts) == ["CLOSED", "LAST_ACK", "TIME_WAIT"]
    assert ax.get_xlim() == (0.0, 4.0)
    # Every named state's name fits inside its bar.
    renderer = fig.canvas.get_renderer()
    for text in ax.texts:
        box = text.get_window_extent(renderer)
        assert any(
            b.get_window_extent(renderer).x0 <= box.x0 and box.x1 <= b.get_window_extent(renderer).x1
            for b in bars
        )


def test_state_changes_at_one_instant_keep_their_order():
    # Without TIME_WAIT the client passes FIN_WAIT_2 -> TIME_WAIT -> CLOSED within one
    # instant; the chart must end in CLOSED, not in whichever name sorts last.
    r = simulate("lost-final-ack", time_wait_msl=0)
    text = describe_timeline(r.timeline)
    client = text.split("client: ")[1].split(";")[0]
    assert client.endswith("CLOSED from 0.004 s")
    fig = state_timeline(r.timeline)
    last = max((b for b in fig.axes[0].patches if b.get_y() < 0.5), key=lambda b: b.get_x() + b.get_width())
    assert _hex(last.get_facecolor()) == state_colour("CLOSED")


def test_a_figure_the_caller_gives_keeps_the_callers_layout():
    # Only a figure the plot made is laid out (tight_layout) by it: a panel that places its
    # axes itself keeps them where it put them.
    import matplotlib.pyplot as plt

    r = simulate("lost-final-ack", time_wait_msl=0)
    fig, (top, bottom) = plt.subplots(2, 1)
    before = [ax.get_position().bounds for ax in (top, bottom)]
    sequence_diagram(r.trace, ax=top, states=r.timeline)
    state_timeline(r.timeline, ax=bottom)
    assert [ax.get_position().bounds for ax in (top, bottom)] == before
    plt.close(fig)
    fig, ax = plt.subplots()
    default = ax.get_position().bounds
    plt.close(fig)
    made = sequence_diagram(r.trace)  # a figure of its own: laid out to fill it
    assert made.axes[0].get_position().bounds != default
    plt.close(made)


def test_state_labels_of_one_row_are_stacked_in_time_order_not_overprinted():
    r = simulate("lost-final-ack")
    fig = sequence_diagram(r.trace, states=r.timeline)
    renderer = fig.canvas.get_renderer()
    labels = [t for t in fig.axes[0].texts if t.get_text() in STATE_COLOURS]
    assert [t.get_text() for t in labels] == [s for _, _, s in r.timeline]
    boxes = [t.get_window_extent(renderer) for t in labels]
    for (i, a), (j, b) in itertools.combinations(enumerate(boxes), 2):
        assert not a.overlaps(b), (labels[i].get_text(), labels[j].get_text())
    # On the client's first row, CLOSED comes above SYN_SENT (display y grows upwards).
    client = [
        (t.get_text(), box.y0) for t, box in zip(labels, boxes, strict=True) if t.get_position()[0] < 0.5
    ]
    assert client[0][0] == "CLOSED" and client[1][0] == "SYN_SENT" and client[0][1] > client[1][1]


def test_a_figure_is_an_inline_svg_named_by_its_alt_text_with_its_text_kept_as_text():
    r = simulate("lost-final-ack")
    alt = describe_trace(r.trace, "A lost final ACK")
    shown = FigureHTML(sequence_diagram(r.trace, states=r.timeline), alt, "the caption")._repr_html_()
    assert "<img" not in shown and "base64" not in shown
    svg = ET.fromstring(re.search(r"<svg.*</svg>", shown, flags=re.S).group(0))
    assert svg.get("role") == "img" and svg.get("aria-label") == alt
    texts = ["".join(t.itertext()) for t in svg.iter("{http://www.w3.org/2000/svg}text")]
    assert "SYN_SENT" in texts and any(t.startswith("FIN|ACK seq=") for t in texts)
    assert "<figcaption>the caption</figcaption>" in shown
    # The figure stops shrinking where its smallest text (8 pt state labels, in a viewBox of
    # 7.5 in = 540 pt) would drop below FIGURE_MIN_TEXT_PX.
    style = dict(part.split(":") for part in svg.get("style").split(";"))
    assert svg.get("viewBox").split()[2] == "540"
    assert style["min-width"] == f"{round(540 * FIGURE_MIN_TEXT_PX / 8)}px"
    # The same figure gives the same markup: nbval and the glue pages compare it.
    again = FigureHTML(sequence_diagram(r.trace, states=r.timeline), alt, "the caption")._repr_html_()
    assert again == shown


def test_a_figure_with_superscripts_keeps_them_legible_too():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([0.01, 0.1, 1], [1, 2, 3])
    ax.set_xscale("log")
    svg = ET.fromstring(
        re.search(r"<svg.*</svg>", FigureHTML(fig, "a log axis")._repr_html_(), re.S).group(0)
    )
    style = dict(part.split(":") for part in svg.get("style").split(";"))
    assert any("^" in t.get_text() for t in ax.get_xticklabels())
    assert style["min-width"] == f"{round(504 * FIGURE_MIN_TEXT_PX / 7)}px"


def test_a_figures_style_sheet_styles_only_the_figure():
    """An inline SVG's <style> applies to the whole page: every rule is scoped to the figure."""
    r = simulate("lost-final-ack")
    shown = FigureHTML(sequence_diagram(r.trace, states=r.timeline), "alt")._repr_html_()
    sheets = re.findall(r"<style[^>]*>(.*?)</style>", shown, flags=re.S)
    rules = [rule.split("{")[0].strip() for sheet in sheets for rule in sheet.split("}") if "{" in rule]
    assert rules and all(rule.startswith('svg[data-figure="matplotlib"]') for rule in rules), rules
