"""Sweeps: the vectorised Monte Carlo agrees with the event engine trial by trial, and the
estimates behave as the theory says."""
import numpy as np
import pytest

from timewait.model import simulate
from timewait.model.portbudget import port_budget
from timewait.model.sweeps import (DUPLICATE_CODES, RESET_OUTCOMES, old_duplicate_sweep,
                                   old_duplicate_trials, reset_outcome_by_losses, reset_sweep,
                                   wilson_interval)


@pytest.mark.parametrize("time_wait", [0.0, 0.1, 0.3, 1.0, 60.0])
def test_reset_rule_matches_the_event_engine_for_every_loss_count(time_wait):
    codes = reset_outcome_by_losses(time_wait)
    engine = [RESET_OUTCOMES.index(simulate("lost-final-ack", time_wait=time_wait,
                                            final_ack_losses=k).outcome)
              for k in range(len(codes))]
    assert list(codes) == engine


@pytest.mark.parametrize("isn", ["fixed", "clock", "random"])
@pytest.mark.parametrize("time_wait,reconnect,timestamps", [
    (0.0, 0.0, False), (15.0, 0.0, False), (5.0, 3.0, False), (0.0, 0.0, True)])
def test_old_duplicate_trials_match_the_event_engine(isn, time_wait, reconnect, timestamps):
    codes, draws = old_duplicate_trials(25, isn, time_wait, reconnect, timestamps=timestamps,
                                        rng=np.random.default_rng(5))
    if isn == "random":  # make a few incarnations collide so that acceptance is exercised
        draws.client_isns[:4, 1] = draws.client_isns[:4, 0]
        draws.server_isns[:3, 1] = draws.server_isns[:3, 0]
        codes, _ = old_duplicate_trials(25, isn, time_wait, reconnect, timestamps=timestamps,
                                        draws=draws)
    for i in range(25):
        kw = dict(isn=isn, time_wait=time_wait, reconnect_delay=reconnect,
                  timestamps=timestamps, hold=float(draws.hold[i]), isn_secret=0, ts_offset=0)
        if isn == "random":
            kw["client_isns"] = tuple(int(x) for x in draws.client_isns[i])
            kw["server_isns"] = tuple(int(x) for x in draws.server_isns[i])
        r = simulate("old-duplicate", **kw)
        got = "accepted" if r.outcome == "old-duplicate-accepted" else r.defence
        assert got == DUPLICATE_CODES[codes[i]], (i, kw)


def test_fixed_isns_need_a_time_wait_of_one_msl():
    r = old_duplicate_sweep(time_wait_msl=(0, 0.5, 1, 2), isn=("fixed",), trials=20_000)
    p = r.column("p")
    assert p[0] > 0.99 and 0.47 < p[1] < 0.53 and p[2] == 0 and p[3] == 0
    for row in r.rows:
        assert row["low"] <= row["p"] <= row["high"]


def test_clock_isns_and_paws_protect_without_time_wait():
    r = old_duplicate_sweep(time_wait_msl=(0,), isn=("clock",), trials=20_000)
    assert r.rows[0]["hits"] == 0 and r.rows[0]["by_sequence_window"] > 19_000
    r = old_duplicate_sweep(time_wait_msl=(0,), isn=("fixed",), timestamps=True, trials=20_000)
    assert r.rows[0]["hits"] == 0 and r.rows[0]["by_paws"] > 19_000


def test_random_isns_are_accepted_about_half_the_window_over_two_to_the_32():
    r = old_duplicate_sweep(time_wait_msl=(0,), isn=("random",), ack_check=False,
                            trials=2_000_000, seed=1)
    row = r.rows[0]
    # Some byte of the 100-byte segment falls in the 65535-byte window, and its random ACK
    # number is not ahead of what the server has sent (half of the sequence space).
    expected = (65535 + 100 - 1) / 2 ** 32 / 2
    assert row["low"] <= expected <= row["high"]
    assert row["hits"] > 0


def test_reset_probability_equals_the_loss_rate_without_time_wait():
    r = reset_sweep(final_ack_loss=(0.2, 0.5), time_wait_msl=(0, 2), trials=50_000, seed=3)
    by = {(row["final_ack_loss"], row["time_wait_msl"]): row for row in r.rows}
    for loss in (0.2, 0.5):
        row = by[(loss, 0.0)]
        assert row["low"] <= loss <= row["high"]
        assert by[(loss, 2.0)]["hits"] == 0


def test_sweeps_are_deterministic_for_a_seed():
    a = reset_sweep(trials=1000, seed=4).rows
    b = reset_sweep(trials=1000, seed=4).rows
    assert a == b


def test_wilson_interval():
    low, high = wilson_interval(0, 100)
    assert low == 0 and 0.03 < high < 0.04
    low, high = wilson_interval(50, 100)
    assert low < 0.5 < high
    with pytest.raises(ValueError, match="trials"):
        wilson_interval(1, 0)


@pytest.mark.parametrize("kw,needle", [
    (dict(trials=0), "trials"), (dict(final_ack_loss=(1.5,)), "final_ack_loss"),
    (dict(time_wait_msl=(-1,)), "time_wait_msl")])
def test_sweep_arguments_are_checked(kw, needle):
    with pytest.raises(ValueError, match=needle):
        reset_sweep(**kw)


def test_port_budget():
    b = port_budget(rate=1000, time_wait=60, port_range=(32768, 60999))
    assert b.ports == 28232 and b.ceiling_rate == pytest.approx(28232 / 60)
    assert b.time_to_exhaustion == pytest.approx(28.232)
    ok = port_budget(rate=100, time_wait=60)
    assert ok.population == 6000 and ok.time_to_exhaustion is None
    assert port_budget(rate=100, time_wait=0).population == 0
    with pytest.raises(ValueError, match="port_range"):
        port_budget(rate=1, port_range=(60000, 1000))
    with pytest.raises(ValueError, match="rate"):
        port_budget(rate=-1)
