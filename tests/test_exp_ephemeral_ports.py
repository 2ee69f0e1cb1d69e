"""ephemeral-ports and port-defaults: which call picks the source port, and how far it stretches."""
import pytest

from timewait.experiments import run
from timewait.experiments.ephemeral_ports import destinations_for

live = pytest.mark.live


@live
def test_a_fresh_namespace_has_loopback_only_reuse_after_one_second(full_tier):
    values = run("port-defaults").sysctls
    assert values["net.ipv4.tcp_tw_reuse"] == "2"
    assert values["net.ipv4.ip_local_port_range"] == "32768 60999"
    assert values["net.ipv4.tcp_timestamps"] == "1"
    # an older kernel has no tcp_tw_reuse_delay file: the experiment reports None
    assert values["net.ipv4.tcp_tw_reuse_delay"] in ("1000", None)


@live
@pytest.mark.parametrize("how, call, error", [
    ("connect", "connect", "EADDRNOTAVAIL"),
    ("bind", "bind", "EADDRINUSE"),
    ("bind-reuseaddr", "bind", "EADDRINUSE"),
    ("bind-no-port", "connect", "EADDRNOTAVAIL"),
])
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


def test_destinations_differ_by_address_or_by_port():
    assert destinations_for(2, "address") == [("127.0.0.1", 5000), ("127.0.0.2", 5000)]
    assert destinations_for(2, "port") == [("127.0.0.1", 5000), ("127.0.0.1", 5001)]


@pytest.mark.parametrize("bad", [{"ports": 0}, {"ports": 1001}, {"how": "listen"},
                                 {"destinations": 0}, {"destinations": 5},
                                 {"destinations": True}, {"vary": "host"}])
def test_bad_options_are_rejected(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        run("ephemeral-ports", **bad)


def test_port_defaults_takes_no_options():
    with pytest.raises(ValueError, match="ports"):
        run("port-defaults", ports=4)


@live
def test_connect_uses_every_port_of_an_even_range_and_all_but_at_most_one_of_an_odd_one(
        full_tier):
    """__inet_hash_connect() scans an even number of ports from a random even offset, wrapping
    with ``port -= remaining``: an odd range of n ports offers n - 1 of them to each connect(),
    which n - 1 depending on the offset; for three ports the offset is always 0."""
    r = run("ephemeral-range-sizes", max_size=12, runs=20)
    assert r.sizes == list(range(1, 13)) and r.runs == 20
    for size in r.sizes:
        made = r.connections[str(size)]
        assert len(made) == 20
        assert r.errors[str(size)] == ["EADDRNOTAVAIL"]
        if size % 2 == 0 or size == 1:
            assert made == [size] * 20, (size, made)
            assert r.top_port_used[str(size)] == 20
        elif size == 3:
            assert made == [2] * 20
            assert r.top_port_used["3"] == 0
        else:
            assert all(size - 1 <= m <= size for m in made), (size, made)


@pytest.mark.parametrize("bad", [{"max_size": 0}, {"max_size": 33}, {"runs": 0},
                                 {"runs": 51}, {"runs": 2.5}])
def test_range_sizes_rejects_bad_options(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        run("ephemeral-range-sizes", **bad)
