"""tw-bucket-overflow: past tcp_max_tw_buckets, a close skips TIME_WAIT and is counted."""

import pytest

from timewait.experiments import run


@pytest.mark.live
@pytest.mark.parametrize("buckets, extra", [(5, 3), (20, 1)])
def test_closes_beyond_the_limit_skip_time_wait(full_tier, buckets, extra):
    r = run("tw-bucket-overflow", max_tw_buckets=buckets, extra=extra)
    assert r.connections == buckets + extra
    assert r.time_wait == buckets
    assert r.skipped == extra
    assert r.counters == {"TW": buckets, "TCPTimeWaitOverflow": extra}
    assert r.reconnect_waiting_port == "EADDRINUSE"
    assert r.reconnect_skipped_port == "connected"


def time_wait_rows(result) -> list:
    """``[local, peer]`` of each row of the result's socket table, all of them TIME_WAIT."""
    rows = [row.split() for row in result.socket_table.splitlines()[1:]]
    assert all(row[0] == "TIME_WAIT" for row in rows)
    return [row[3:5] for row in rows]


@pytest.mark.live
def test_over_ipv6_closes_beyond_the_limit_skip_time_wait_too(full_tier):
    r = run("tw-bucket-overflow", max_tw_buckets=5, extra=3, family=6)
    assert (r.connections, r.time_wait, r.skipped) == (8, 5, 3)
    assert r.counters == {"TW": 5, "TCPTimeWaitOverflow": 3}
    assert (r.reconnect_waiting_port, r.reconnect_skipped_port) == ("EADDRINUSE", "connected")
    assert r.client_addresses == ["::1"] * 8
    assert time_wait_rows(r) == [[f"::1:{40000 + i}", "::1:5000"] for i in range(5)]


@pytest.mark.live
@pytest.mark.parametrize("fill, then", [(4, 6), (6, 4)])
def test_ipv4_and_ipv6_time_wait_sockets_count_against_one_limit(full_tier, fill, then):
    """The namespace has one tcp_death_row: a table filled over one IP version turns the
    other version's closes away too."""
    r = run("tw-bucket-overflow", max_tw_buckets=5, extra=3, family=then, fill_family=fill)
    address = {4: "127.0.0.1", 6: "::1"}
    assert r.client_addresses == [address[fill]] * 5 + [address[then]] * 3
    assert (r.time_wait, r.skipped) == (5, 3)
    assert r.counters == {"TW": 5, "TCPTimeWaitOverflow": 3}
    assert time_wait_rows(r) == [[f"{address[fill]}:{40000 + i}", f"{address[fill]}:5000"] for i in range(5)]
    assert (r.reconnect_waiting_port, r.reconnect_skipped_port) == ("EADDRINUSE", "connected")


@pytest.mark.parametrize(
    "bad",
    [
        {"max_tw_buckets": 0},
        {"max_tw_buckets": 1001},
        {"extra": 0},
        {"extra": 2.5},
        {"extra": True},
        {"buckets": 5},
        {"family": 5},
        {"fill_family": 5},
    ],
)
def test_bad_options_are_rejected(bad):
    with pytest.raises(ValueError):
        run("tw-bucket-overflow", **bad)
