"""A result is built from exactly what its experiment's body returned; a recording made by an
older version may hold fields that are gone, or lack ones that are new. Its summary shows the
fields declared ``shown()``."""

import json
from dataclasses import dataclass, fields
from typing import Optional

import pytest

from timewait.experiments import REGISTRY
from timewait.experiments.base import RECORDINGS, ExperimentResult, recorded, shown
from timewait.tiers import Tier

FourWayClose = REGISTRY["four-way-close"].result


def test_a_key_the_result_has_no_field_for_is_an_error_naming_it():
    with pytest.raises(
        TypeError,
        match=r"four-way-close: the result has no field 'end_state'; "
        r"fields: .*end_states",
    ):
        FourWayClose.from_json({"experiment": "four-way-close", "end_state": {}})


def test_a_recording_may_hold_a_field_that_is_gone():
    result = FourWayClose.from_json(
        {"experiment": "four-way-close", "close_segments": 4, "a_field_removed_since": 1}, recording=True
    )
    assert result.close_segments == 4 and not hasattr(result, "a_field_removed_since")


@pytest.mark.parametrize("path", sorted(RECORDINGS.glob("*.json")), ids=lambda p: p.stem)
def test_every_recorded_variant_loads(path):
    exp = REGISTRY[path.stem]
    for entry in json.loads(path.read_text())["runs"]:
        result = recorded(exp, exp.check(entry["params"]), Tier("none", "a test"))
        assert result.recorded and result.summary()


def test_a_field_without_a_default_that_the_body_left_out_is_an_error_naming_it():
    exp = REGISTRY["four-way-close"]
    recorded_run = json.loads((RECORDINGS / "four-way-close.json").read_text())["runs"][0]["result"]
    body_result = {k: v for k, v in recorded_run.items() if k != "close_segments"}
    with pytest.raises(TypeError, match=r"four-way-close: the result lacks field 'close_segments'"):
        exp.result.from_json(body_result)
    assert exp.result.from_json(recorded_run).close_segments == recorded_run["close_segments"]


def test_a_recording_made_before_a_field_existed_loads_it_as_none():
    result = FourWayClose.from_json({"experiment": "four-way-close", "close_segments": 4}, recording=True)
    assert result.close_segments == 4 and result.end_states is None


@dataclass(kw_only=True)
class Example(ExperimentResult):
    late: int = shown()
    hidden: int
    early: str = shown()
    limited: Optional[int] = shown(default=None, when="limit")
    unlimited: Optional[int] = shown(default=None, unless="limit")
    extra: list = shown(default_factory=list, only_if_set=True)

    QUIET_OPTIONS = {"limit": 0}


def example(**fields) -> Example:
    common = {"experiment": "example", "tier": "full", "kernel": "Linux"}
    return Example(**common, late=2, hidden=7, early="a\nb", **fields)


def test_summary_shows_the_fields_declared_shown_in_their_order():
    assert example(params={"n": 1, "limit": 0}, unlimited=3).summary().splitlines() == [
        "example (n=1)",
        "  late: 2",
        "  early:",
        "    a",
        "    b",
        "  unlimited: 3",
    ]


def test_an_option_decides_which_fields_a_run_shows_and_an_empty_one_is_left_out_while_unset():
    text = example(params={"n": 1, "limit": 8}, limited=5, extra=[1, 2]).summary()
    assert text.splitlines()[0] == "example (n=1, limit=8)"
    assert "  limited: 5" in text and "unlimited" not in text and "  extra: [1, 2]" in text
    assert "hidden" not in text


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_the_options_a_summary_depends_on_are_options_of_the_experiment(name):
    exp = REGISTRY[name]
    options = {p.name for p in exp.params}
    for f in fields(exp.result):
        how = f.metadata.get("shown")
        assert how is None or {how.when, how.unless} - {None} <= options, f.name
    assert set(exp.result.QUIET_OPTIONS) <= options
