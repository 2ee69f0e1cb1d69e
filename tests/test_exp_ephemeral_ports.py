"""ephemeral-ports: which call picks the source port, and how far it stretches."""

import pytest

from timewait.experiments import run
from timewait.experiments.ephemeral_ports import destinations_for

live = pytest.mark.live


@live
@pytest.mark.parametrize(
    "how, call, error",
    [
        ("connect", "connect", "EADDRNOTAVAIL"),
        ("bind", "bind", "EADDRINUSE"),
        ("bind-reuseaddr", "bind", "EADDRINUSE"),
        ("bind-no-port", "connect", "EADDRNOTAVAIL"),
    ],
)
def test_which_call_fails_and_with_which_errno(full_tier, how, call, error):
    r = run("ephemeral-ports", ports=4, how=how)
    assert r.connections == r.time_wait == r.local_ports_used == 4
    assert (r.failed_call, r.first_error) == (call, error)


@live
@pytest.mark.parametrize("how", ["connect", "bind-no-port"])
@pytest.mark.parametrize("vary", ["address", "port"])
def test_each_destination_gets_the_whole_range_when_connect_picks_the_port(full_tier, how, vary):
    r = run("ephemeral-ports", ports=4, how=how, destinations=3, vary=vary)
    assert r.per_destination == [4, 4, 4] and r.connections == r.time_wait == 12
    assert r.local_ports_used == 4 and r.connections_per_port == [3, 3, 3, 3]
    assert r.source_addresses == ["127.0.0.1"]  # only the destination differs
    assert (r.failed_call, r.first_error) == ("connect", "EADDRNOTAVAIL")


@live
@pytest.mark.parametrize("how", ["bind", "bind-reuseaddr"])
def test_a_port_picked_by_bind_serves_one_connection_whatever_the_destination(full_tier, how):
    r = run("ephemeral-ports", ports=4, how=how, destinations=3)
    assert r.connections == r.time_wait == 4
    assert r.connections_per_port == [1, 1, 1, 1]
    assert (r.failed_call, r.first_error) == ("bind", "EADDRINUSE")


@live
def test_bind_also_misses_the_third_port_of_three(full_tier):
    r = run("ephemeral-ports", ports=3, how="bind")
    assert r.connections == r.local_ports_used == 2


@live
@pytest.mark.parametrize(
    "how, call, error, per_destination",
    [
        ("connect", "connect", "EADDRNOTAVAIL", [4, 4, 4]),
        ("bind-no-port", "connect", "EADDRNOTAVAIL", [4, 4, 4]),
        ("bind", "bind", "EADDRINUSE", None),
        ("bind-reuseaddr", "bind", "EADDRINUSE", None),
    ],
)
def test_over_ipv6_the_same_call_fails_and_ports_stretch_as_far(full_tier, how, call, error, per_destination):
    r = run("ephemeral-ports", ports=4, how=how, destinations=3, vary="port", family=6)
    assert r.destinations == ["[::1]:5000", "[::1]:5001", "[::1]:5002"]
    assert r.source_addresses == ["::1"]  # the client's own sockets were IPv6 ones
    assert (r.failed_call, r.first_error) == (call, error)
    assert r.local_ports_used == 4
    if per_destination:  # connect() picks the port for the whole 4-tuple
        assert r.per_destination == per_destination and r.connections == r.time_wait == 12
        assert r.connections_per_port == [3, 3, 3, 3]
    else:  # bind() picks a port that then serves one connection
        assert r.connections == r.time_wait == 4 and r.connections_per_port == [1, 1, 1, 1]


def test_destinations_differ_by_address_or_by_port():
    assert destinations_for(2, "address") == [("127.0.0.1", 5000), ("127.0.0.2", 5000)]
    assert destinations_for(2, "port") == [("127.0.0.1", 5000), ("127.0.0.1", 5001)]
    assert destinations_for(2, "port", family=6) == [("::1", 5000), ("::1", 5001)]
    assert destinations_for(1, "address", family=6) == [("::1", 5000)]


def test_ipv6_destinations_differ_by_port_only():
    with pytest.raises(ValueError, match=r"vary: IPv6 has one loopback address"):
        destinations_for(2, "address", family=6)


@pytest.mark.parametrize(
    "bad",
    [
        {"ports": 0},
        {"ports": 1001},
        {"how": "listen"},
        {"destinations": 0},
        {"destinations": 5},
        {"destinations": True},
        {"vary": "host"},
        {"family": 5},
    ],
)
def test_bad_options_are_rejected(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        run("ephemeral-ports", **bad)
