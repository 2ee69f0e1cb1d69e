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


@pytest.mark.parametrize(
    "bad",
    [
        {"max_tw_buckets": 0},
        {"max_tw_buckets": 1001},
        {"extra": 0},
        {"extra": 2.5},
        {"extra": True},
        {"buckets": 5},
    ],
)
def test_bad_options_are_rejected(bad):
    with pytest.raises(ValueError):
        run("tw-bucket-overflow", **bad)
