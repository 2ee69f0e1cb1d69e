"""reuseport-group: the kernel spreads a SO_REUSEPORT group's connections by 4-tuple hash."""

import pytest

from timewait.experiments import run


@pytest.mark.live
def test_every_listener_gets_a_share_and_a_plain_socket_cannot_join(full_tier):
    r = run("reuseport-group", listeners=4, connections=200)
    assert r.listening_on == ["127.0.0.1:5000"] * 4
    assert len(r.accepted) == 4 and sum(r.accepted) == 200
    # Binomial(200, 1/4) per listener: below 10 has odds of about 1e-11
    assert min(r.accepted) >= 10 and r.every_listener_accepted
    assert r.bind_without_reuseport == "EADDRINUSE"


@pytest.mark.live
def test_the_same_4_tuple_reaches_the_same_listener(full_tier):
    r = run("reuseport-group", listeners=8, connections=40, repeats=6)
    assert sorted(r.fixed_port_listeners) == ["40001", "40002", "40003"]
    assert all(len(v) == 6 and len(set(v)) == 1 for v in r.fixed_port_listeners.values())
    assert r.same_tuple_same_listener
    # 40 connections plus 6 from each of 3 fixed ports: each counted once at either end
    assert r.opens == {"Tcp:ActiveOpens": 58, "Tcp:PassiveOpens": 58}


@pytest.mark.live
def test_over_ipv6_a_group_on_1_spreads_connections_and_keeps_each_4_tuple(full_tier):
    r = run("reuseport-group", listeners=4, connections=200, family=6)
    assert r.listening_on == ["::1:5000"] * 4  # the socket table: four listeners, all on ::1
    assert len(r.accepted) == 4 and sum(r.accepted) == 200
    assert min(r.accepted) >= 10 and r.every_listener_accepted  # as over IPv4: below 10 is ~1e-11
    assert r.bind_without_reuseport == "EADDRINUSE"
    assert all(len(v) == 5 and len(set(v)) == 1 for v in r.fixed_port_listeners.values())
    assert r.same_tuple_same_listener
    assert r.opens == {"Tcp:ActiveOpens": 215, "Tcp:PassiveOpens": 215}  # IPv6 counts in Tcp: too


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"listeners": 1}, "listeners: must be between 2 and 8"),
        ({"listeners": 9}, "listeners: must be between 2 and 8"),
        ({"connections": 7}, "connections: must be between 8 and 1000"),
        ({"connections": "200"}, "connections: must be between 8 and 1000"),
        ({"repeats": 21}, "repeats: must be between 2 and 20"),
        ({"family": 5}, "family: must be one of 4, 6"),
    ],
)
def test_bad_options_are_rejected_naming_the_option_and_its_range(bad, message):
    with pytest.raises(ValueError, match=message):
        run("reuseport-group", **bad)
