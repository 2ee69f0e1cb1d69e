"""close-wait-leak: CLOSE_WAIT lasts until the application closes; the kernel runs no timer."""
import pytest

from timewait.experiments import run


@pytest.mark.live
def test_close_wait_outlives_the_peers_and_has_no_timer(full_tier):
    r = run("close-wait-leak", connections=4, hold=2, fin_timeout=1)
    assert r.close_wait_at_start == 4
    assert r.close_wait_after_hold == 4
    assert r.close_wait_timer == "off"
    assert r.client_states_after_hold == {"CLOSED": 4}
    assert r.reads_after_fin == "EOF"
    assert r.write_into_leak == "sent, then EPIPE"


@pytest.mark.live
def test_closing_on_end_of_file_leaves_no_close_wait(full_tier):
    r = run("close-wait-leak", connections=2, hold=1, server_closes=True)
    assert r.close_wait_at_start == 0 and r.close_wait_after_hold == 0
    assert r.client_states_after_hold == {"TIME_WAIT": 2}


@pytest.mark.parametrize("bad", [{"connections": 0}, {"connections": 101}, {"hold": 0},
                                 {"hold": 61}, {"fin_timeout": 0}, {"server_closes": 1},
                                 {"leak": True}])
def test_bad_options_are_rejected(bad):
    with pytest.raises(ValueError):
        run("close-wait-leak", **bad)
