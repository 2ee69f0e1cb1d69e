"""four-way-close: the socket tables it reports, as the course reads them and as ss prints them."""

import re

import pytest

from timewait.experiments import run

# ss -o prints the time left as whole seconds ("59sec") or, at a full minute, "1min".
SS_TIME_WAIT = re.compile(r"timer:\(timewait,(?:[1-5]?\dsec|1min),0\)$")


@pytest.mark.live
@pytest.mark.parametrize("closer, local", [("client", "127.0.0.1:40000"), ("server", "127.0.0.1:5000")])
def test_ss_shows_the_closers_socket_with_its_timewait_timer(full_tier, closer, local):
    r = run("four-way-close", closer=closer)
    if r.ss_time_wait is None:
        pytest.skip("ss (iproute2) is not installed")
    assert len(r.ss_time_wait) == 1, r.ss_time_wait
    row = r.ss_time_wait[0]
    assert row.split()[2] == local, row
    assert SS_TIME_WAIT.search(row), row
    assert r.time_wait_timer_s == 60
