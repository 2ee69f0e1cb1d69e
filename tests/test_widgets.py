"""Widgets re-run the model on every change and show bad input as a message."""
import base64
import re

import pytest

pytest.importorskip("ipywidgets")

from timewait.widgets import port_budget_calculator, sequence_explorer, sweep_explorer  # noqa: E402

PNG = b"\x89PNG"


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
    img = re.fullmatch(r'<img src="data:image/png;base64,([^"]+)" alt="([^"]+)">', s.image.value)
    assert img and base64.b64decode(img.group(1)).startswith(PNG)
    assert img.group(2).startswith("P(old duplicate accepted) against TIME_WAIT length (MSL)")
    assert "isn = fixed: 1 at 0," in img.group(2)  # fixed ISNs, no TIME_WAIT: always accepted
    s.sweep.value = "reset"
    assert s.ok and s.result.name == "reset"
    assert 'alt="P(peer sees a reset) against final-ACK loss rate' in s.image.value
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
    assert 'alt="P(new incarnation disturbed) against TIME_WAIT length (MSL)' in s.image.value
    assert "0 at 2," in s.image.value and "by a late reset" in s.status.value
    s.isn.value = ("clock",)
    assert s.ok and {r["isn"] for r in s.result.rows} == {"clock"}
    s.isn.value = ()
    assert not s.ok and "isn" in s.status.value
    s.isn.value = ("fixed",)
    s.sweep.value = "old-duplicate"
    assert s.ok and s.result.name == "old-duplicate"


def test_port_budget_calculator():
    p = port_budget_calculator(rate=1000, time_wait=60)
    assert p.budget.exhausted and "28.23 s" in p.output.value
    p.rate.value = 10
    assert not p.budget.exhausted and "within budget" in p.status.value
    p.low.value = 70000
    assert not p.ok and "port_range" in p.status.value
