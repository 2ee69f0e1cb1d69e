"""The benchmark's SimPy model (benchmarks/simpy_model.py) is the same model: for every
seed it produces the same trace, timeline and outcome as the event engine, so the
benchmark compares two engines running the same work."""

import sys
from pathlib import Path

import pytest

pytest.importorskip("simpy")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from simpy_model import SIMPY_SCENARIOS, on_simpy  # noqa: E402

from timewait.model import simulate  # noqa: E402

VARIANTS = [
    {},
    dict(loss=0.05, jitter=0.002, time_wait_msl=0),  # what the benchmark runs
    dict(loss=0.3, jitter=0.01),
    dict(loss=0.3),  # no jitter: many events at the same instant
    dict(duplicate=0.3, reorder=0.3, jitter=0.003),
    dict(request_bytes=100, loss=0.1, jitter=0.002, closer="server"),
]


@pytest.mark.parametrize("scenario", SIMPY_SCENARIOS)
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: ",".join(v) or "defaults")
def test_simpy_model_gives_the_same_results(scenario, variant):
    if scenario == "simultaneous-close":
        variant = {k: v for k, v in variant.items() if k != "closer"}
    for seed in range(15):
        ours = simulate(scenario, seed=seed, **variant)
        with on_simpy():
            theirs = simulate(scenario, seed=seed, **variant)
        assert theirs.to_dict() == ours.to_dict(), (scenario, seed, variant)


def test_simpy_model_covers_every_outcome_the_benchmark_meets():
    outcomes = set()
    for seed in range(60):
        with on_simpy():
            outcomes.add(
                simulate("lost-final-ack", seed=seed, loss=0.05, jitter=0.002, time_wait_msl=0).outcome
            )
    assert {"peer-reset"} <= outcomes


def test_data_and_half_close_match():
    for kw in (
        dict(request_bytes=100, response_bytes=300, loss=0.2, jitter=0.002),
        dict(request_bytes=10, response_bytes=30, half_close=True, merged=True, loss=0.1),
    ):
        for seed in range(15):
            ours = simulate("four-way-close", seed=seed, **kw)
            with on_simpy():
                theirs = simulate("four-way-close", seed=seed, **kw)
            assert theirs.to_dict() == ours.to_dict(), (seed, kw)
