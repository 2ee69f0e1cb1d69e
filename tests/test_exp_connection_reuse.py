"""connection-reuse: kept-alive and pooled connections serve what short ones cannot."""

import pytest

from timewait.experiments import run

live = pytest.mark.live


@live
def test_a_connection_per_request_runs_out_of_ports(full_tier):
    r = run("connection-reuse", mode="new-connection", requests=100, ports=8)
    assert r.requests_served == r.connections_opened == r.local_ports_used == 8
    assert r.first_error == "EADDRNOTAVAIL"
    assert r.time_wait_left == 8


@live
def test_one_kept_alive_connection_serves_every_request(full_tier):
    r = run("connection-reuse", mode="keep-alive", requests=100, ports=8)
    assert (r.requests_served, r.first_error) == (100, None)
    assert r.connections_opened == r.local_ports_used == r.time_wait_left == 1


@live
def test_a_pool_uses_as_many_ports_as_connections(full_tier):
    r = run("connection-reuse", mode="pool", pool_size=3, requests=90, ports=8)
    assert (r.requests_served, r.first_error) == (90, None)
    assert r.connections_opened == r.local_ports_used == r.time_wait_left == 3


@live
def test_a_pool_larger_than_the_range_fails_to_open(full_tier):
    r = run("connection-reuse", mode="pool", pool_size=4, requests=10, ports=2)
    assert (r.requests_served, r.first_error) == (2, "EADDRNOTAVAIL")
    assert r.connections_opened == 2


@live
@pytest.mark.parametrize(
    "mode, requests, served, error, opened",
    [
        ("new-connection", 100, 8, "EADDRNOTAVAIL", 8),
        ("keep-alive", 100, 100, None, 1),
        ("pool", 90, 90, None, 3),
    ],
)
def test_over_ipv6_reuse_spares_ports_as_over_ipv4(full_tier, mode, requests, served, error, opened):
    r = run("connection-reuse", mode=mode, pool_size=3, requests=requests, ports=8, family=6)
    assert (r.requests_served, r.first_error) == (served, error)
    assert r.connections_opened == r.local_ports_used == r.time_wait_left == opened
    assert r.client_addresses == ["::1"]  # the TIME_WAIT sockets left are IPv6 ones


@pytest.mark.parametrize(
    "bad",
    [
        {"requests": 0},
        {"requests": 2001},
        {"mode": "pipeline"},
        {"pool_size": 0},
        {"pool_size": 17},
        {"ports": 0},
        {"ports": 1.5},
        {"family": 5},
    ],
)
def test_bad_options_are_rejected(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        run("connection-reuse", **bad)
