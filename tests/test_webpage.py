"""A panel run for a web page: its widgets' messages go to the page's widget manager, and a
control moved there re-runs the model, as in a notebook (timewait.webpage)."""

import json

import comm
import pytest

from timewait import webpage
from timewait.model import simulate


@pytest.fixture
def page(monkeypatch):
    """The messages a page would receive: [(msg_type, comm_id, message), ...]."""
    monkeypatch.setattr(comm, "create_comm", comm.create_comm)
    sent = []
    webpage.install(lambda msg_type, comm_id, text: sent.append((msg_type, comm_id, json.loads(text))))
    yield sent
    monkeypatch.setattr(webpage, "_send", None)


def _state(sent, comm_id):
    """The widget's state as the page knows it: opened, then updated."""
    state = {}
    for msg_type, cid, message in sent:
        if cid == comm_id and msg_type in ("comm_open", "comm_msg"):
            state.update(message["data"].get("state", {}))
    return state


def _find(sent, **match):
    for msg_type, cid, message in sent:
        s = message["data"].get("state", {})
        if msg_type == "comm_open" and all(s.get(k) == v for k, v in match.items()):
            return cid
    raise AssertionError(f"no widget opened with {match}")


def test_a_panel_opens_every_widget_on_the_page_and_returns_its_root(page):
    root = webpage.start(
        "sequence_explorer", json.dumps({"scenario": "lost-final-ack", "time_wait_msl": 0.0, "seed": 0})
    )
    opened = {cid for msg_type, cid, _ in page if msg_type == "comm_open"}
    assert root in opened
    assert all(m["target_name"] == "jupyter.widget" for t, _, m in page if t == "comm_open")
    status = _state(page, _find(page, _model_name="HTMLModel", description=""))
    assert status  # the page can show it


def test_a_control_moved_on_the_page_redraws_what_the_model_computes(page):
    webpage.start(
        "sequence_explorer", json.dumps({"scenario": "lost-final-ack", "time_wait_msl": 2.0, "seed": 0})
    )
    slider = _find(page, _model_name="FloatSliderModel", description="TIME_WAIT (MSL)")
    before = len(page)
    webpage.receive(slider, json.dumps({"method": "update", "state": {"value": 0.0}, "buffer_paths": []}))
    updates = [
        m["data"]["state"]["value"]
        for t, _, m in page[before:]
        if t == "comm_msg" and "outcome:" in str(m["data"].get("state", {}).get("value"))
    ]
    expected = simulate("lost-final-ack", time_wait_msl=0.0, seed=0)
    assert expected.outcome == "peer-reset"
    assert updates and f"outcome: {expected.outcome}" in updates[-1]


def test_the_port_budget_takes_its_range_as_a_list(page):
    root = webpage.start(
        "port_budget_calculator", json.dumps({"rate": 1.0, "time_wait": 60.0, "port_range": [40000, 40009]})
    )
    assert root


def test_the_sweep_panel_redraws_its_chart_for_the_estimate_chosen_on_the_page(page):
    webpage.start("sweep_explorer", json.dumps({"sweep": "old-duplicate", "trials": 200, "seed": 0}))
    estimate = _find(page, _model_name="DropdownModel", description="estimate")
    before = len(page)
    webpage.receive(estimate, json.dumps({"method": "update", "state": {"index": 2}, "buffer_paths": []}))
    charts = [
        m["data"]["state"]["value"]
        for t, _, m in page[before:]
        if t == "comm_msg" and "<svg" in str(m["data"].get("state", {}).get("value"))
    ]
    assert charts and 'aria-label="P(peer sees a reset) against final-ACK loss rate' in charts[-1]


def test_unknown_panels_and_comms_are_refused_by_name(page):
    with pytest.raises(ValueError, match="name: one of port_budget_calculator"):
        webpage.start("no_such_panel", "{}")
    with pytest.raises(ValueError, match="comm_id"):
        webpage.receive("nope", "{}")
