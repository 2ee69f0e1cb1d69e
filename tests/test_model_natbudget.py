"""The NAT port budget: a gateway's ports, each held for the connection's life plus
conntrack's timeout, carry ports / life connections per second; the event simulation agrees
with the closed forms."""

import math

import pytest

from timewait.model.natbudget import (
    CONNTRACK_TIME_WAIT,
    erlang_b,
    even_arrivals_connected,
    simulate_nat,
    sustainable_rate,
    sustainable_rate_sweep,
)


def test_sustainable_rate_is_ports_over_life():
    assert sustainable_rate(28232, 0.0) == pytest.approx(28232 / 120)
    assert sustainable_rate(4, 2.0, 30.0) == pytest.approx(4 / 32)
    assert sustainable_rate(4, 0.0, 0.0) == math.inf
    assert sustainable_rate(4, math.inf) == 0.0
    assert CONNTRACK_TIME_WAIT == 120.0


def test_sweep_rows_scale_with_ports_and_shorter_time_wait():
    rows = sustainable_rate_sweep(port_counts=(1000, 2000), holds=(120.0, 30.0))
    by = {(r["hold"], r["ports"]): r["rate"] for r in rows}
    assert by[(120.0, 2000)] == pytest.approx(2 * by[(120.0, 1000)])
    assert by[(30.0, 1000)] == pytest.approx(4 * by[(120.0, 1000)])


@pytest.mark.parametrize(
    "ports, rate, duration, hold, window",
    [
        (4, 1.0, math.inf, 120.0, 6.0),  # kept open: the first four get through
        (4, 1.0, 0.0, 120.0, 12.0),  # all within one TIME_WAIT: four of twelve
        (4, 0.1, 0.0, 120.0, 1000.0),  # life x rate = 12 exactly: ties free the port
        (10, 3.0, 1.0, 2.0, 100.0),  # life x rate = 9 <= 10 ports: nobody fails
        (7, 2.5, 0.3, 3.1, 200.0),
        (50, 7.0, 0.5, 30.0, 400.0),
        (3, 0.5, 5.0, 0.0, 50.0),  # hold 0: only the connection's own life
        (1, 10.0, 0.0, 0.0, 5.0),  # life 0: every arrival gets the one port
    ],
)
def test_even_arrivals_simulation_matches_closed_form(ports, rate, duration, hold, window):
    run = simulate_nat(ports, rate, duration, hold, window)
    assert run.connected == even_arrivals_connected(ports, rate, duration, hold, window)
    assert run.connected + run.failed == run.offered
    assert run.peak_in_use <= ports


def test_even_arrivals_below_the_ceiling_never_fail_and_above_it_fail_at_ports_over_rate():
    below = simulate_nat(100, 0.99 * 100 / 120, 0.0, 120.0, 3600.0)
    assert below.failed == 0 and below.first_failure is None
    above = simulate_nat(100, 2.0, 0.0, 120.0, 600.0)
    assert above.first_failure == pytest.approx(100 / 2.0)
    # over a long window the connections that get through approach the sustainable rate
    assert above.connected / above.window == pytest.approx(100 / 120, rel=0.25)
    long = simulate_nat(100, 2.0, 0.0, 120.0, 12000.0)
    assert long.connected / long.window == pytest.approx(100 / 120, rel=0.02)


def test_shorter_conntrack_time_wait_lets_more_through():
    slow = simulate_nat(64, 2.0, 0.0, 120.0, 600.0)
    fast = simulate_nat(64, 2.0, 0.0, 30.0, 600.0)
    assert fast.connected > slow.connected
    assert fast.failed < slow.failed


def test_poisson_failures_match_erlang_loss_formula():
    run = simulate_nat(10, 1.2, 0.0, 10.0, 20000.0, arrivals="poisson", seed=3)
    assert run.failed_share == pytest.approx(erlang_b(10, 12.0), abs=0.02)
    # random arrivals lose some connections even below the ceiling of ports / life
    under = simulate_nat(10, 0.8, 0.0, 10.0, 20000.0, arrivals="poisson", seed=4)
    assert under.failed > 0
    assert under.failed_share == pytest.approx(erlang_b(10, 8.0), abs=0.02)


def test_poisson_runs_repeat_with_their_seed():
    a = simulate_nat(5, 1.0, 0.0, 10.0, 500.0, arrivals="poisson", seed=7)
    b = simulate_nat(5, 1.0, 0.0, 10.0, 500.0, arrivals="poisson", seed=7)
    c = simulate_nat(5, 1.0, 0.0, 10.0, 500.0, arrivals="poisson", seed=8)
    assert a == b
    assert a != c


def test_erlang_b_edges():
    assert erlang_b(1, 0.0) == 0.0
    assert erlang_b(1, 1.0) == pytest.approx(0.5)
    assert erlang_b(2, 1.0) == pytest.approx(0.2)  # (1/2) / (1 + 1 + 1/2)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(ports=0), "ports"),
        (dict(ports=65536), "ports"),
        (dict(ports=4.0), "ports"),
        (dict(ports=True), "ports"),
        (dict(rate=0.0), "rate"),
        (dict(rate=math.inf), "rate"),
        (dict(rate="x"), "rate"),
        (dict(duration=-1.0), "duration"),
        (dict(duration=math.nan), "duration"),
        (dict(hold=-0.5), "hold"),
        (dict(hold=math.inf), "hold"),
        (dict(window=0.0), "window"),
        (dict(arrivals="burst"), "arrivals"),
        (dict(rate=1e6, window=10.0), "rate x window"),
    ],
)
def test_bad_parameters_name_the_parameter_and_its_range(kwargs, name):
    args = dict(ports=4, rate=1.0, duration=0.0, hold=120.0, window=10.0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=f"^{name}: must"):
        simulate_nat(**args)


def test_bad_parameters_of_the_closed_forms():
    with pytest.raises(ValueError, match="^ports: must be a whole number from 1 to 65535"):
        sustainable_rate(0, 0.0)
    with pytest.raises(ValueError, match="^hold: must be a finite number >= 0"):
        sustainable_rate(4, 0.0, -1.0)
    with pytest.raises(ValueError, match="^offered_load: must"):
        erlang_b(4, -1.0)
    with pytest.raises(ValueError, match="^window: must"):
        even_arrivals_connected(4, 1.0, 0.0, 120.0, -5.0)
