"""Sweeps: the vectorised Monte Carlo agrees with the event engine trial by trial, and the
estimates behave as the theory says."""

import numpy as np
import pytest

from timewait.model import simulate
from timewait.model.portbudget import port_budget
from timewait.model.sweeps import (
    DUPLICATE_CODES,
    PROVOKED_CODES,
    RESET_OUTCOMES,
    DuplicateDraws,
    ProvokedDraws,
    final_ack_losses,
    old_duplicate_sweep,
    old_duplicate_trials,
    provoked_reset_expected,
    provoked_reset_sweep,
    provoked_reset_trials,
    reset_outcome_by_losses,
    reset_sweep,
    split_by_outcome,
    wilson_interval,
)


@pytest.mark.parametrize("time_wait", [0.0, 0.1, 0.3, 1.0, 60.0])
def test_reset_rule_matches_the_event_engine_for_every_loss_count(time_wait):
    codes = reset_outcome_by_losses(time_wait)
    engine = [
        RESET_OUTCOMES.index(simulate("lost-final-ack", time_wait=time_wait, final_ack_losses=k).outcome)
        for k in range(len(codes))
    ]
    assert list(codes) == engine


@pytest.mark.parametrize("isn", ["fixed", "clock", "random"])
@pytest.mark.parametrize(
    "time_wait,reconnect,timestamps",
    [(0.0, 0.0, False), (15.0, 0.0, False), (5.0, 3.0, False), (0.0, 0.0, True)],
)
def test_old_duplicate_trials_match_the_event_engine(isn, time_wait, reconnect, timestamps):
    codes, draws = old_duplicate_trials(
        25, isn, time_wait, reconnect, timestamps=timestamps, rng=np.random.default_rng(5)
    )
    if isn == "random":  # make a few incarnations collide so that acceptance is exercised
        draws.client_isns[:4, 1] = draws.client_isns[:4, 0]
        draws.server_isns[:3, 1] = draws.server_isns[:3, 0]
        codes, _ = old_duplicate_trials(25, isn, time_wait, reconnect, timestamps=timestamps, draws=draws)
    for i in range(25):
        kw = dict(
            isn=isn,
            time_wait=time_wait,
            reconnect_delay=reconnect,
            timestamps=timestamps,
            hold=float(draws.hold[i]),
            isn_secret=0,
            ts_offset=0,
        )
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
    r = old_duplicate_sweep(time_wait_msl=(0,), isn=("random",), ack_check=False, trials=2_000_000, seed=1)
    row = r.rows[0]
    # Some byte of the 100-byte segment falls in the 65535-byte window, and its random ACK
    # number is not ahead of what the server has sent (half of the sequence space).
    expected = (65535 + 100 - 1) / 2**32 / 2
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


@pytest.mark.parametrize(
    "kw,needle",
    [
        (dict(trials=0), "trials"),
        (dict(final_ack_loss=(1.5,)), "final_ack_loss"),
        (dict(time_wait_msl=(-1,)), "time_wait_msl"),
    ],
)
def test_sweep_arguments_are_checked(kw, needle):
    with pytest.raises(ValueError, match=needle):
        reset_sweep(**kw)


def _engine_code(result):
    """The event engine's outcome as a :data:`PROVOKED_CODES` name."""
    if result.outcome == "old-duplicate-accepted":
        return "accepted"
    if result.outcome == "late-reset-accepted":
        return "reset"
    if result.outcome == "late-reset-rejected":
        return "reset-" + result.defence
    assert result.outcome == "old-duplicate-rejected", result.outcome
    return result.defence


@pytest.mark.parametrize("isn", ["fixed", "clock", "random"])
@pytest.mark.parametrize(
    "time_wait,reconnect,timestamps",
    [
        (0.0, 0.0, False),
        (15.0, 0.0, False),
        (30.0, 0.0, False),
        (45.0, 0.0, False),
        (20.0, 3.0, False),
        (15.0, 0.0, True),
    ],
)
def test_provoked_reset_trials_match_the_event_engine(isn, time_wait, reconnect, timestamps):
    n, delay, msl = 24, 0.001, 30.0
    codes, draws = provoked_reset_trials(
        n, isn, time_wait, reconnect, timestamps=timestamps, rng=np.random.default_rng(11)
    )
    # Steer a few resets into the narrow windows: no connection yet, and SYN-SENT. The
    # request arrives inside TIME_WAIT and provokes the reset, which takes 0.6 MSL or less.
    sent, tw_end = 2 * delay, 6 * delay + time_wait
    t2 = tw_end + reconnect
    targets = [(1, t2 + delay / 2), (2, t2 + 1.5 * delay)]
    if reconnect:
        targets.append((0, tw_end + reconnect / 2))
    for i, target in targets if time_wait > 2 else ():
        draws.hold[i] = max(1.0, target - sent - 0.6 * msl)
        draws.answer_hold[i] = target - (sent + draws.hold[i])
    if isn == "random":  # collide some incarnations, and put some resets inside the window
        draws.client_isns[:4, 1] = draws.client_isns[:4, 0]
        draws.server_isns[:8, 1] = draws.server_isns[:8, 0]
        draws.server_isns[8:12, 1] = (draws.server_isns[8:12, 0] - 10) % 2**32
        # The request meets the server in SYN-RECEIVED, in its window but acknowledging
        # the wrong SYN: that ACK check answers with a reset too.
        if t2 + 2 * delay - sent <= msl:
            draws.client_isns[12:14, 1] = draws.client_isns[12:14, 0]
            draws.hold[12:14] = t2 + 2 * delay - sent
    codes, _ = provoked_reset_trials(n, isn, time_wait, reconnect, timestamps=timestamps, draws=draws)
    assert max(draws.answer_hold) <= msl
    for i in range(n):
        kw = dict(
            isn=isn,
            time_wait=time_wait,
            reconnect_delay=reconnect,
            timestamps=timestamps,
            hold=float(draws.hold[i]),
            answer_hold=float(draws.answer_hold[i]),
            isn_secret=0,
            ts_offset=0,
        )
        if isn == "random":
            kw["client_isns"] = tuple(int(x) for x in draws.client_isns[i])
            kw["server_isns"] = tuple(int(x) for x in draws.server_isns[i])
        assert _engine_code(simulate("provoked-reset", **kw)) == PROVOKED_CODES[codes[i]], (i, kw)


def test_the_matched_trials_cover_every_fate_of_the_reset():
    seen = set()
    for isn in ("fixed", "clock", "random"):
        for tw, r in ((15.0, 0.0), (30.0, 0.0), (45.0, 0.0), (20.0, 3.0)):
            codes, draws = provoked_reset_trials(2000, isn, tw, r, rng=np.random.default_rng(2))
            if isn == "random":
                draws.server_isns[:, 1] = (draws.server_isns[:, 0] - 10) % 2**32
                codes, _ = provoked_reset_trials(2000, isn, tw, r, draws=draws)
            seen |= {PROVOKED_CODES[c] for c in codes}
    assert {
        "accepted",
        "reset",
        "reset-time-wait",
        "reset-no-connection",
        "reset-rst-check",
        "reset-sequence-window",
    } <= seen


def test_fixed_isns_need_a_time_wait_of_two_msl_against_the_provoked_reset():
    grid = (0.25, 0.5, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5)
    r = provoked_reset_sweep(time_wait_msl=grid, isn=("fixed",), trials=20_000, seed=6)
    expected = provoked_reset_expected(grid)
    for row, disturbed, accepted, reset in zip(
        r.rows, expected["disturbed"], expected["accepted"], expected["reset"], strict=True
    ):
        for hits, p in ((row["hits"], disturbed), (row["accepted"], accepted), (row["reset"], reset)):
            if p == 0:
                assert hits == 0, row
            else:  # a 99.9 % interval: the handshakes' milliseconds are far inside it
                low, high = wilson_interval(hits, row["trials"], z=3.29)
                assert low <= p <= high, (row, p)
    by = {row["time_wait_msl"]: row for row in r.rows}
    assert by[1.0]["accepted"] == 0 and by[1.0]["reset"] > 9_000
    assert by[1.5]["reset"] > 2_000
    assert by[2.0]["hits"] == 0 and by[2.0]["by_reset_time_wait"] > 19_000


def test_the_provoked_reset_is_no_threat_when_isns_differ():
    r = provoked_reset_sweep(time_wait_msl=(0.5, 1.0, 1.5), isn=("clock", "random"), trials=20_000, seed=1)
    assert all(row["hits"] == 0 for row in r.rows)
    assert all(row["by_reset_sequence_window"] > 2_000 for row in r.rows)


def test_paws_does_not_stop_the_provoked_reset():
    # Timestamps reject the old request, but a reset carries no timestamp to check.
    r = provoked_reset_sweep(time_wait_msl=(0.0, 1.0), isn=("fixed",), timestamps=True, trials=20_000, seed=2)
    no_tw, one_msl = r.rows
    assert no_tw["accepted"] == 0 and no_tw["by_paws"] > 19_000
    assert one_msl["reset"] > 9_000


def test_provoked_reset_expected_values():
    e = provoked_reset_expected([0.0, 0.5, 1.0, 1.5, 2.0, 3.0])
    assert list(e["disturbed"]) == pytest.approx([1.0, 0.875, 0.5, 0.125, 0.0, 0.0])
    assert list(e["accepted"]) == pytest.approx([1.0, 0.5, 0.0, 0.0, 0.0, 0.0])
    assert list(e["reset"]) == pytest.approx([0.0, 0.375, 0.5, 0.125, 0.0, 0.0])
    with pytest.raises(ValueError, match="time_wait_msl"):
        provoked_reset_expected([-0.5])


def test_split_by_outcome_gives_each_part_its_own_rows():
    r = provoked_reset_sweep(time_wait_msl=(0.5, 1.5), trials=1000, seed=0)
    parts = split_by_outcome(r, {"either": "hits", "old request": "accepted", "late reset": "reset"})
    assert [(row["part"], row["time_wait_msl"]) for row in parts.rows] == [
        ("either", 0.5),
        ("either", 1.5),
        ("old request", 0.5),
        ("old request", 1.5),
        ("late reset", 0.5),
        ("late reset", 1.5),
    ]
    for row, src in zip(parts.rows[2:4], r.rows, strict=True):
        assert row["hits"] == src["accepted"] and row["low"] <= row["p"] <= row["high"]
    with pytest.raises(ValueError, match="parts"):
        split_by_outcome(r, {"x": "no-such-column"})
    both = provoked_reset_sweep(time_wait_msl=(0.5,), isn=("fixed", "clock"), trials=100)
    with pytest.raises(ValueError, match="one row per time_wait_msl"):
        split_by_outcome(both, {"either": "hits"})


@pytest.mark.parametrize(
    "kw,needle",
    [
        (dict(trials=0), "trials"),
        (dict(time_wait_msl=(-1,)), "time_wait_msl"),
        (dict(isn=("lucky",)), "isn: must be one of"),
        (dict(msl=0), "msl: must be > 0"),
    ],
)
def test_provoked_reset_sweep_arguments_are_checked(kw, needle):
    with pytest.raises(ValueError, match=needle):
        provoked_reset_sweep(**kw)


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


# ---- the plain-Python backend (a web page's Pyodide has no numpy) ------------------------
def _as_lists(draws, kind):
    """numpy draws as the plain-Python backend keeps them: lists, ISNs as pairs of ints."""
    pairs = lambda a: None if a is None else [(int(x), int(y)) for x, y in a]  # noqa: E731
    holds = [[float(h) for h in draws.hold]]
    if kind is ProvokedDraws:
        holds.append([float(h) for h in draws.answer_hold])
    return kind(*holds, pairs(draws.client_isns), pairs(draws.server_isns))


@pytest.mark.parametrize("isn", ["fixed", "clock", "random"])
@pytest.mark.parametrize(
    "time_wait,reconnect,timestamps",
    [
        (0.0, 0.0, False),
        (15.0, 0.0, False),
        (30.0, 0.0, False),
        (45.0, 0.0, False),
        (20.0, 3.0, False),
        (15.0, 0.0, True),
        (0.0, 0.0, True),
    ],
)
def test_both_backends_decide_every_trial_alike(isn, time_wait, reconnect, timestamps):
    n = 3000
    _, draws = provoked_reset_trials(
        n, isn, time_wait, reconnect, timestamps=timestamps, rng=np.random.default_rng(7)
    )
    if isn == "random":  # collisions, resets inside the window and beside it
        draws.client_isns[:400, 1] = draws.client_isns[:400, 0]
        draws.client_isns[1000:1400, 1] = draws.client_isns[1000:1400, 0]
        draws.server_isns[:800, 1] = draws.server_isns[:800, 0]
        draws.server_isns[800:1200, 1] = (draws.server_isns[800:1200, 0] - 10) % 2**32
    codes, _ = provoked_reset_trials(
        n, isn, time_wait, reconnect, timestamps=timestamps, draws=draws, backend="numpy"
    )
    listed = _as_lists(draws, ProvokedDraws)
    plain, _ = provoked_reset_trials(
        n, isn, time_wait, reconnect, timestamps=timestamps, draws=listed, backend="python"
    )
    assert plain == [int(c) for c in codes]
    dup = DuplicateDraws(draws.hold, draws.client_isns, draws.server_isns)
    codes, _ = old_duplicate_trials(
        n, isn, time_wait, reconnect, timestamps=timestamps, draws=dup, backend="numpy"
    )
    plain, _ = old_duplicate_trials(
        n,
        isn,
        time_wait,
        reconnect,
        timestamps=timestamps,
        draws=_as_lists(dup, DuplicateDraws),
        backend="python",
    )
    assert plain == [int(c) for c in codes]
    if isn == "random" and time_wait == 0.0 and not timestamps:
        assert {0, 5, 6} <= set(plain)  # accepted, and both defences, were exercised


def test_plain_python_final_ack_losses_are_geometric():
    import random

    losses = final_ack_losses(200_000, 0.5, 8, random.Random(3))
    assert max(losses) == 9 and min(losses) == 0
    for j in (1, 2, 3):  # P(at least j ACKs lost in a row) = loss ** j
        low, high = wilson_interval(sum(k >= j for k in losses), len(losses))
        assert low <= 0.5**j <= high
    assert final_ack_losses(5, 0.0, 8, random.Random(0)) == [0] * 5
    assert final_ack_losses(5, 1.0, 8, random.Random(0)) == [9] * 5


@pytest.mark.parametrize(
    "sweep,kw",
    [
        (reset_sweep, dict(final_ack_loss=(0.2, 0.5), time_wait_msl=(0, 0.01, 2))),
        (old_duplicate_sweep, dict(time_wait_msl=(0, 0.5, 1), isn=("fixed", "clock"))),
        (provoked_reset_sweep, dict(time_wait_msl=(0, 1, 1.5, 2), isn=("fixed",))),
    ],
)
def test_plain_python_sweeps_agree_with_numpy_within_their_intervals(sweep, kw):
    plain = sweep(trials=4000, seed=5, backend="python", **kw)
    fast = sweep(trials=4000, seed=5, backend="numpy", **kw)
    assert plain.rows == sweep(trials=4000, seed=5, backend="python", **kw).rows  # seeded
    assert plain.rows != fast.rows or all(r["p"] in (0, 1) for r in fast.rows)
    for a, b in zip(plain.rows, fast.rows, strict=True):
        assert {k: v for k, v in a.items() if not isinstance(v, (int, float))} == {
            k: v for k, v in b.items() if not isinstance(v, (int, float))
        }
        # two independent samples: each estimate inside the other's 99.9 % interval
        for x, y in ((a, b), (b, a)):
            low, high = wilson_interval(y["hits"], y["trials"], z=3.29)
            assert low - 0.01 <= x["p"] <= high + 0.01, (a, b)


def test_backend_is_checked():
    with pytest.raises(ValueError, match="backend"):
        reset_sweep(trials=10, backend="fortran")


@pytest.mark.parametrize("sweep", [reset_sweep, old_duplicate_sweep, provoked_reset_sweep])
def test_sweeps_take_only_their_x_axis_by_position(sweep):
    # The other axes have different orders in different sweeps; by name there is no mix-up.
    with pytest.raises(TypeError):
        sweep((0.0,), (0.0,))
