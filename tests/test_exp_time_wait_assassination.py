"""time-wait-assassination: an in-window RST kills TIME_WAIT unless tcp_rfc1337=1."""
import pytest

from timewait.experiments import run


@pytest.mark.live
@pytest.mark.parametrize("rfc1337", [0, 1])
def test_rfc1337_decides_whether_time_wait_survives_the_reset(full_tier, rfc1337):
    r = run("time-wait-assassination", rfc1337=rfc1337)
    assert r.trace[-1].flags == "RST" and r.trace[-1].note == "crafted"
    assert r.reply_to_rst is None  # TIME_WAIT answers a RST with nothing, either way
    if rfc1337:
        assert r.time_wait_survived
        assert r.reconnect == "EADDRINUSE"
        assert r.time_wait_timer_s > 50
    else:
        assert not r.time_wait_survived
        assert r.reconnect == "ok"
        assert r.reusable_after_s == 0.0
        assert "TIME_WAIT" not in r.socket_table


@pytest.mark.parametrize("bad", [{"rfc1337": 2}, {"rfc1337": -1}, {"rfc1337": True},
                                 {"rfc1337": "1"}])
def test_bad_options_are_rejected(bad):
    with pytest.raises(ValueError):
        run("time-wait-assassination", **bad)
