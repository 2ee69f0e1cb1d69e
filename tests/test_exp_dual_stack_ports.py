"""dual-stack-ports: IPv4 and IPv6 connections to the same server port do not share one
ephemeral-port budget; each family gets every port of the range again, and one port number
serves an IPv4 and an IPv6 connection at the same time."""

import os

import pytest

from timewait.experiments import get, run

live = pytest.mark.live


def _host():
    """The host's port range and its sockets on the experiment's ports (40000-40003, 5000)."""
    rows = []
    for name in ("tcp", "tcp6"):
        path = f"/proc/net/{name}"
        if os.path.exists(path):
            rows += [
                r.split()[1] + " " + r.split()[2]
                for r in open(path).read().splitlines()[1:]
                if r.split()[2].endswith(":1388")
                and r.split()[1].endswith((":9C40", ":9C41", ":9C42", ":9C43"))
            ]
    return open("/proc/sys/net/ipv4/ip_local_port_range").read(), sorted(rows)


@live
@pytest.mark.parametrize("first", [4, 6])
@pytest.mark.parametrize("hold", ["time-wait", "established"])
def test_each_family_gets_the_whole_range(full_tier, first, hold):
    r = run("dual-stack-ports", first=first, hold=hold)
    assert (r.first_connections, r.first_error) == (4, "EADDRNOTAVAIL")
    assert (r.second_connections, r.second_error) == (4, "EADDRNOTAVAIL")
    assert (r.first_again_connections, r.first_again_error) == (0, "EADDRNOTAVAIL")
    assert r.failed_call == "connect"
    state = "TIME_WAIT" if hold == "time-wait" else "ESTABLISHED"
    assert r.client_states == {"4": {state: 4}, "6": {state: 4}}
    assert r.ports_by_family == {"4": [40000, 40001, 40002, 40003], "6": [40000, 40001, 40002, 40003]}
    assert r.shared_ports == [40000, 40001, 40002, 40003]


@live
@pytest.mark.parametrize("bind_first, error", [(False, "EADDRNOTAVAIL"), (True, "EADDRINUSE")])
def test_bind_before_connect_fails_in_bind_and_still_per_family(full_tier, bind_first, error):
    r = run("dual-stack-ports", bind_first=bind_first)
    assert r.failed_call == ("bind" if bind_first else "connect")
    assert (r.first_connections, r.second_connections, r.first_again_connections) == (4, 4, 0)
    assert r.first_error == r.second_error == r.first_again_error == error
    assert r.shared_ports == [40000, 40001, 40002, 40003]


@live
def test_a_wider_range_is_the_same_per_family(full_tier):
    r = run("dual-stack-ports", ports=10, first=6)
    assert (r.first_connections, r.second_connections, r.first_again_connections) == (10, 10, 0)
    assert len(r.shared_ports) == 10


@live
@pytest.mark.parametrize("first, rows", [(4, 0), (6, 4)])
def test_an_ipv4_mapped_address_shares_the_ipv4_budget(full_tier, first, rows):
    # An AF_INET6 socket connecting to ::ffff:127.0.0.1 makes an IPv4 connection: the
    # family that comes second gets no port at all.
    r = run("dual-stack-ports", mapped=True, first=first)
    assert (r.first_connections, r.second_connections, r.first_again_connections) == (4, 0, 0)
    assert r.first_error == r.second_error == r.first_again_error == "EADDRNOTAVAIL"
    assert r.client_states == {"4": {"TIME_WAIT": 4}, "6": {}}
    assert r.shared_ports == []
    # the kernel lists the mapped client's TIME_WAIT sockets in /proc/net/tcp6
    assert r.mapped_rows == rows
    assert "mapped=True" in r.summary().splitlines()[0] and "mapped_rows" in r.summary()


@live
def test_the_run_leaves_the_host_untouched(full_tier):
    before = _host()
    r = run("dual-stack-ports", hold="established")
    assert r.client_states["6"] == {"ESTABLISHED": 4}
    assert _host() == before


@pytest.mark.parametrize(
    "bad",
    [
        {"ports": 1},
        {"ports": 101},
        {"first": 5},
        {"first": "6"},
        {"hold": "open"},
        {"bind_first": 1},
        {"mapped": 1},
        {"x": 1},
    ],
)
def test_bad_options_are_rejected(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        get("dual-stack-ports").check(bad)
