"""tw-memory: a TIME_WAIT socket costs a fraction of a full socket."""

import pytest

from timewait.experiments import run


@pytest.mark.live
def test_a_time_wait_socket_is_several_times_cheaper_than_an_open_one(full_tier):
    r = run("tw-memory", connections=4000)
    assert r.time_wait_sockets == 4000, (r.sockstat_time_wait, r.closes_counted)
    assert r.closes_counted.get("TW") == 4000
    assert 150 < r.bytes_per_time_wait < 1500
    assert r.bytes_per_open_socket > 3 * r.bytes_per_time_wait
    if r.slab_readable:
        assert r.slab_object_sizes["tw_sock_TCP"] < r.slab_object_sizes["TCP"]
    else:
        assert r.slab_object_sizes == {}


@pytest.mark.parametrize(
    "bad",
    [
        {"connections": 999},
        {"connections": 20001},
        {"connections": 5000.5},
        {"connections": "many"},
        {"sockets": 5000},
    ],
)
def test_bad_options_are_rejected(bad):
    with pytest.raises(ValueError):
        run("tw-memory", **bad)
