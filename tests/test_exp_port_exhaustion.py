"""port-exhaustion: TIME_WAIT on every ephemeral port; tcp_tw_reuse (with timestamps) recovers."""

import pytest

from timewait.experiments import run

live = pytest.mark.live


@live
@pytest.mark.parametrize("tw_reuse", [0, 1, 2])
@pytest.mark.parametrize("timestamps", [True, False])
def test_exhaustion_and_recovery(full_tier, tw_reuse, timestamps):
    r = run("port-exhaustion", ports=4, tw_reuse=tw_reuse, timestamps=timestamps)
    assert r.connections_before_exhaustion == 4
    assert (r.failed_call, r.first_error) == ("connect", "EADDRNOTAVAIL")
    assert r.time_wait_at_exhaustion == 4
    if tw_reuse and timestamps:  # 2 means loopback only, and this is loopback
        assert r.recovered_after_s == 1.0
        assert r.counters["TWRecycled"] == 1
    else:
        assert r.recovered_after_s is None
        assert "TWRecycled" not in r.counters
    assert r.counters["TW"] >= 4


@live
@pytest.mark.parametrize("tw_reuse, recovers", [(0, False), (1, True), (2, False)])
def test_reuse_2_is_for_loopback_addresses_only(full_tier, tw_reuse, recovers):
    r = run("port-exhaustion", ports=2, tw_reuse=tw_reuse, address="192.0.2.1")
    assert (r.connections_before_exhaustion, r.first_error) == (2, "EADDRNOTAVAIL")
    assert (r.recovered_after_s == 1.0) is recovers
    assert (r.recovered_after_s is None) is not recovers


@live
def test_bind_before_connect_fails_in_bind_and_reuse_does_not_help(full_tier):
    r = run("port-exhaustion", ports=4, tw_reuse=1, bind_first=True)
    assert r.connections_before_exhaustion == r.time_wait_at_exhaustion == 4
    assert (r.failed_call, r.first_error) == ("bind", "EADDRINUSE")
    assert r.recovered_after_s is None
    assert "TWRecycled" not in r.counters


@live
def test_a_three_port_range_gives_only_two_connections(full_tier):
    # connect()'s port search rounds the range size down to even and misses the third port
    r = run("port-exhaustion", ports=3, tw_reuse=0, reuse_delay_ms=100)
    assert r.connections_before_exhaustion == r.time_wait_at_exhaustion == 2


@live
def test_reuse_waits_for_the_reuse_delay(full_tier):
    r = run("port-exhaustion", ports=1, tw_reuse=1, timestamps=True, reuse_delay_ms=3000)
    assert (r.connections_before_exhaustion, r.recovered_after_s) == (1, 3.0)


@live
def test_a_shorter_reuse_delay_recovers_sooner(full_tier):
    r = run("port-exhaustion", ports=2, tw_reuse=1, reuse_delay_ms=500)
    assert r.recovered_after_s == 0.5


@live
def test_a_thousand_ports_run_out_as_fast(full_tier):
    r = run("port-exhaustion", ports=1000, tw_reuse=0)
    assert r.connections_before_exhaustion == r.time_wait_at_exhaustion == 1000


@live
def test_summary_shows_no_exact_timing(full_tier):
    r = run("port-exhaustion", ports=1, tw_reuse=1)
    assert "recovered_exact_s" not in r.summary() and r.recovered_exact_s is not None


@pytest.mark.parametrize(
    "bad",
    [
        {"ports": 0},
        {"ports": 1001},
        {"ports": 2.5},
        {"tw_reuse": 3},
        {"tw_reuse": True},
        {"timestamps": 1},
        {"reuse_delay_ms": 0},
        {"reuse_delay_ms": 10001},
        {"address": "10.0.0.1"},
        {"bind_first": "yes"},
        {"range": 10},
    ],
)
def test_bad_options_are_rejected(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        run("port-exhaustion", **bad)


@pytest.mark.live
def test_tw_reuse_2_counts_a_socket_bound_to_lo_as_loopback_whatever_its_address(full_tier):
    plain = run("port-exhaustion", ports=10, tw_reuse=2, address="192.0.2.1")
    bound = run("port-exhaustion", ports=10, tw_reuse=2, address="192.0.2.1", bind_to_lo=True)
    assert plain.recovered_after_s is None and "TWRecycled" not in plain.counters
    assert bound.first_error == "EADDRNOTAVAIL"
    assert bound.recovered_after_s == 1.0 and bound.counters["TWRecycled"] == 1
