"""The sweep chart in SVG: each curve told apart by more than colour, each point with its
numbers, and the description a screen reader gets."""

import re
import xml.etree.ElementTree as ET

import pytest

from timewait.model.sweeps import old_duplicate_sweep, reset_sweep
from timewait.plots import describe_sweep
from timewait.svgchart import sweep_svg

SVG = "{http://www.w3.org/2000/svg}"


def _chart(result, x, group, **kw):
    return ET.fromstring(sweep_svg(result, x, group, **kw))


def test_each_curve_has_its_own_style_and_a_legend_entry():
    r = reset_sweep(final_ack_loss=(0.1, 0.5), time_wait_msl=(0.0, 0.01, 1.0), trials=300, backend="python")
    root = _chart(
        r, "final_ack_loss", "time_wait_msl", xlabel="final-ACK loss rate", ylabel="P(peer sees a reset)"
    )
    lines = root.findall(f"{SVG}g/{SVG}polyline")
    assert len(lines) == 3
    styles = {(p.get("stroke"), p.get("stroke-dasharray")) for p in lines}
    assert len(styles) == 3 and len({s[1] for s in styles}) == 3  # dashes differ as well
    texts = [t.text for t in root.iter(f"{SVG}text")]
    for tw in (0.0, 0.01, 1.0):
        assert f"time_wait_msl = {tw}" in texts
    assert "P(peer sees a reset)" in texts and "final-ACK loss rate" in texts


def test_every_point_carries_its_numbers_and_the_chart_its_description():
    r = old_duplicate_sweep(
        (0.0, 0.5, 1.0), reconnect_delay=(0.0,), isn=("fixed", "clock"), trials=400, seed=1, backend="python"
    )
    root = _chart(
        r, "time_wait_msl", "isn", xlabel="TIME_WAIT length (MSL)", ylabel="P(old duplicate accepted)"
    )
    alt = describe_sweep(r, "time_wait_msl", "isn", "TIME_WAIT length (MSL)", "P(old duplicate accepted)")
    assert root.get("aria-label") == alt and root.find(f"{SVG}title").text == alt
    titles = [t.text for t in root.iter(f"{SVG}title")][1:]
    assert len(titles) == len(r.rows)
    for row, title in zip(
        sorted(r.rows, key=lambda w: (w["isn"] != "fixed", w["time_wait_msl"])), titles, strict=True
    ):
        assert title.startswith(
            f"isn = {row['isn']}, TIME_WAIT length (MSL) "
            f"{row['time_wait_msl']:g}: {row['hits']:,} of 400 trials"
        )
        assert f"estimate {row['p']:.4g}" in title


def test_labels_stay_inside_the_picture_and_more_curves_than_styles_are_refused():
    r = reset_sweep(final_ack_loss=(0.0, 0.01, 0.02, 0.5), time_wait_msl=(0.0,), trials=50, backend="python")
    svg = sweep_svg(r, "final_ack_loss", "time_wait_msl")
    root = ET.fromstring(svg)
    width = float(root.get("width"))
    ticks = [
        t
        for t in root.iter(f"{SVG}text")
        if t.get("text-anchor") == "middle" and re.fullmatch(r"[0-9.]+", t.text or "")
    ]
    # 0, 0.01 and 0.02 lie within a few pixels: only labels with room are written
    assert [t.text for t in ticks] == ["0", "0.5"]
    assert all(0 <= float(t.get("x")) <= width for t in root.iter(f"{SVG}text"))
    many = reset_sweep(
        final_ack_loss=(0.1,), time_wait_msl=tuple(k / 10 for k in range(8)), trials=10, backend="python"
    )
    with pytest.raises(ValueError, match="group"):
        sweep_svg(many, "final_ack_loss", "time_wait_msl")
