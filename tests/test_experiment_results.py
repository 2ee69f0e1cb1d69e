"""A result is built from exactly what its experiment's body returned; a recording made by an
older version may hold fields that are gone."""

import json

import pytest

from timewait.experiments import REGISTRY
from timewait.experiments.base import RECORDINGS, recorded
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
