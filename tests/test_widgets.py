"""Widgets re-run the model on every change and show bad input as a message."""

import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

pytest.importorskip("ipywidgets")

import ipywidgets as W  # noqa: E402

from timewait.widgets import (  # noqa: E402
    SweepExplorer,
    port_budget_calculator,
    sequence_explorer,
    sweep_explorer,
)

SVG = "{http://www.w3.org/2000/svg}"


def _chart(panel) -> ET.Element:
    """The sweep panel's chart, parsed (one SVG inside a scrolling div)."""
    svgs = re.findall(r"<svg.*?</svg>", panel.chart.value, flags=re.S)
    assert len(svgs) == 1
    return ET.fromstring(svgs[0])


def _point_titles(panel) -> list:
    """The numbers each plotted point carries in its <title> (the chart's own title aside)."""
    root = _chart(panel)
    return [t.text for t in root.iter(f"{SVG}title")][1:]


def test_sequence_explorer_follows_its_controls():
    e = sequence_explorer()
    assert e.ok and e.result.outcome == "clean-close"
    assert e.diagram.value.count("<svg") == 2  # sequence diagram and state timeline
    assert "[lost]" in e.diagram.value and "TIME_WAIT" in e.diagram.value
    e.time_wait_msl.value = 0
    assert e.result.outcome == "peer-reset" and "peer-reset" in e.status.value
    assert "RST" in e.diagram.value  # the redraw follows the new result
    e.scenario.value = "four-way-close"
    e.time_wait_msl.value = 2
    e.closer.value = "server"
    assert e.result.end_states == {"client": "CLOSED", "server": "TIME_WAIT"}
    e.scenario.value = "simultaneous-close"
    assert e.result.end_states == {"client": "TIME_WAIT", "server": "TIME_WAIT"}


def test_sequence_explorer_exports_a_matplotlib_figure():
    e = sequence_explorer()
    fig = e.figure()
    assert len(fig.axes) == 2


def test_sequence_explorer_shows_invalid_input_as_a_message():
    e = sequence_explorer()
    e.msl.value = -1
    assert not e.ok
    assert "Invalid input" in e.status.value and "msl" in e.status.value
    assert "Traceback" not in e.status.value
    e.msl.value = 30
    assert e.ok
    e.delay.value = 100.0
    assert not e.ok and "delay" in e.status.value


def test_sweep_explorer_both_estimates():
    s = sweep_explorer(trials=2000)
    assert s.ok and s.result.name == "old-duplicate"
    alt = _chart(s).get("aria-label")
    assert alt.startswith("P(old duplicate accepted) against TIME_WAIT length (MSL)")
    assert "isn = fixed: 1 at 0," in alt  # fixed ISNs, no TIME_WAIT: always accepted
    # one marker per estimate, each with its numbers
    titles = _point_titles(s)
    assert len(titles) == len(s.result.rows) == 21
    assert "isn = fixed, TIME_WAIT length (MSL) 0: 2,000 of 2,000 trials" in titles[0]
    s.sweep.value = "reset"
    assert s.ok and s.result.name == "reset"
    assert _chart(s).get("aria-label").startswith("P(peer sees a reset) against final-ACK loss rate")
    s.trials.value = 0
    assert not s.ok and "trials" in s.status.value
    s.trials.value = 1000
    s.time_wait_msl.value = ()
    assert not s.ok and "time_wait_msl" in s.status.value


def test_sweep_explorer_provoked_reset_vanishes_at_two_msl():
    s = sweep_explorer(sweep="provoked-reset", trials=4000)
    assert s.ok and s.result.name == "provoked-reset"
    rows = {(r["isn"], r["time_wait_msl"]): r for r in s.result.rows}
    assert {tw for _, tw in rows} == set(s.PROVOKED_TW_GRID)
    # fixed ISNs: one MSL stops the old data but not the late reset; two MSLs stop both
    assert rows[("fixed", 1.0)]["accepted"] == 0
    assert rows[("fixed", 1.0)]["low"] <= 0.5 <= rows[("fixed", 1.0)]["high"]
    assert rows[("fixed", 1.5)]["reset"] > 0
    assert rows[("fixed", 2.0)]["hits"] == 0 and rows[("fixed", 2.5)]["hits"] == 0
    # other ISN policies put the reset outside the new window at every length
    assert all(r["hits"] == 0 for r in s.result.rows if r["isn"] != "fixed")
    alt = _chart(s).get("aria-label")
    assert alt.startswith("P(new incarnation disturbed) against TIME_WAIT length (MSL)")
    assert "0 at 2," in alt and "by a late reset" in s.status.value
    s.isn.value = ("clock",)
    assert s.ok and {r["isn"] for r in s.result.rows} == {"clock"}
    s.isn.value = ()
    assert not s.ok and "isn" in s.status.value
    s.isn.value = ("fixed",)
    s.sweep.value = "old-duplicate"
    assert s.ok and s.result.name == "old-duplicate"


def test_sweep_explorer_disables_the_controls_its_estimate_does_not_use():
    s = sweep_explorer(trials=500)
    assert s.time_wait_msl.disabled and not s.isn.disabled and not s.timestamps.disabled
    s.sweep.value = "reset"
    assert not s.time_wait_msl.disabled
    assert s.isn.disabled and s.reconnect_delay.disabled and s.timestamps.disabled
    s.sweep.value = "provoked-reset"
    assert s.time_wait_msl.disabled and not s.reconnect_delay.disabled


def test_sweep_explorer_in_plain_python_runs_fewer_trials_and_says_so():
    s = sweep_explorer(trials=20_000, backend="python")
    # 3 ISN policies x 7 TIME_WAIT lengths share the budget
    assert s.ok and s.trials_per_point == 1400 <= SweepExplorer.PYTHON_TRIALS["old-duplicate"] // 21
    assert {r["trials"] for r in s.result.rows} == {1400}
    status = re.sub(r"<[^>]+>", "", s.status.value)
    assert status.startswith("1,400 trials per point, 29,400 simulated closes in ")
    assert "20,000 asked" in status and "without numpy" in status
    # the intervals are those of 1,400 trials: wider than with 20,000
    numpy = sweep_explorer(trials=20_000, backend="numpy")
    half = {(r["isn"], r["time_wait_msl"]): r["high"] - r["low"] for r in numpy.result.rows}
    assert all(
        r["high"] - r["low"] > half[(r["isn"], r["time_wait_msl"])] for r in s.result.rows if 0 < r["p"] < 1
    )
    # asked for fewer than the cap: runs them all, and says nothing of a cap
    s.trials.value = 500
    assert s.trials_per_point == 500 and "asked" not in s.status.value
    # a smaller grid leaves more trials for each point
    s.trials.value = 20_000
    s.isn.value = ("fixed",)
    assert s.trials_per_point == 4200
    # the same settings and seed give the same chart
    again = sweep_explorer(trials=20_000, backend="python")
    again.isn.value = ("fixed",)
    assert again.chart.value == s.chart.value
    s.seed.value = 1
    assert s.chart.value != again.chart.value


def test_sweep_explorer_runs_without_numpy_and_matplotlib():
    """As in a web page's Pyodide, which the course site serves without either."""
    code = (
        "import sys; sys.modules['numpy'] = None; sys.modules['matplotlib'] = None\n"
        "from timewait.widgets import SweepExplorer\n"
        "s = SweepExplorer(sweep='provoked-reset')\n"
        "assert s.ok and s.backend == 'python', s.status.value\n"
        "assert s.trials_per_point == 660 and '<svg' in s.chart.value\n"
        "print('ok')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "ok", done.stderr[-2000:]


def test_port_budget_calculator():
    p = port_budget_calculator(rate=1000, time_wait=60)
    assert p.budget.exhausted and "28.23 s" in p.output.value
    p.rate.value = 10
    assert not p.budget.exhausted and "within budget" in p.status.value
    p.low.value = 70000
    assert not p.ok and "port_range" in p.status.value


def _controls(widget):
    kids = getattr(widget, "children", ())
    return [widget] if not kids else [c for k in kids for c in _controls(k)]


@pytest.mark.parametrize(
    "kwargs", [dict(time_wait_msl=0.01, final_ack_losses=3), dict(time_wait_msl=0.0, loss=0.05), dict()]
)
def test_every_slider_starts_at_a_value_it_can_show_and_return_to(kwargs):
    panel = sequence_explorer(scenario="lost-final-ack", seed=0, **kwargs)
    sliders = [c for c in _controls(panel.widget) if isinstance(c, (W.FloatSlider, W.IntSlider))]
    assert sliders
    for s in sliders:
        steps = (s.value - s.min) / s.step
        assert abs(steps - round(steps)) < 1e-9, (s.description, s.value, s.step)
        shown = format(s.value, s.readout_format)
        assert float(shown) == pytest.approx(s.value), (s.description, shown)
    assert panel.time_wait_msl.value == kwargs.get("time_wait_msl", 2.0)


def test_no_control_label_is_cut_to_the_default_width():
    for panel in (sequence_explorer(), port_budget_calculator(), sweep_explorer(trials=100)):
        for c in _controls(panel.widget):
            if getattr(c, "description", ""):
                assert c.style.description_width == "initial", c.description
