"""fin-wait-2: tcp_fin_timeout bounds an orphaned FIN_WAIT_2, not a held one."""

import pytest

from timewait.experiments import run


@pytest.mark.live
@pytest.mark.parametrize("fin_timeout", [1, 2])
def test_the_orphan_lasts_fin_timeout_while_the_held_socket_stays(full_tier, fin_timeout):
    r = run("fin-wait-2", fin_timeout=fin_timeout)
    assert r.lifetime_whole_s == fin_timeout
    assert fin_timeout - 0.1 < r.fin_wait_2_lifetime_s < fin_timeout + 0.5
    assert r.orphan_timer == "timewait"
    assert r.peer_state == "CLOSE_WAIT"
    assert r.held_state == "FIN_WAIT_2"
    assert r.answer_to_late_fin == "RST"


@pytest.mark.live
@pytest.mark.parametrize("fin_timeout,linger2", [(5, 1), (1, 2)])
def test_tcp_linger2_bounds_the_orphan_which_keeps_its_port_until_then(full_tier, fin_timeout, linger2):
    r = run("fin-wait-2", fin_timeout=fin_timeout, linger2=linger2)
    # The orphan lives linger2 seconds, not tcp_fin_timeout: well clear of the other value.
    assert linger2 - 0.1 < r.fin_wait_2_lifetime_s < linger2 + 1.5
    assert r.orphan_timer == "timewait" and r.held_state == "FIN_WAIT_2"
    assert r.bind_while_orphaned == "EADDRINUSE"  # the orphan holds its port
    assert r.bind_after == "ok"  # and frees it when it goes
    assert r.answer_to_late_fin == "RST"


@pytest.mark.live
def test_above_60_s_the_full_socket_waits_before_the_timewait_socket(full_tier):
    r = run("fin-wait-2", fin_timeout=62)
    assert r.orphan_timers == ["keepalive", "timewait"]
    # tcp_fin_timeout - 60 s on each timer: about 4 s in all, not 62
    assert 3.5 < r.fin_wait_2_lifetime_s < 6
    assert (r.bind_while_orphaned, r.bind_after, r.answer_to_late_fin) == ("EADDRINUSE", "ok", "RST")


@pytest.mark.live
def test_up_to_60_s_the_orphan_is_a_timewait_socket_from_the_start(full_tier):
    assert run("fin-wait-2", fin_timeout=2).orphan_timers == ["timewait"]


@pytest.mark.live
def test_over_ipv6_the_orphan_on_1_lasts_fin_timeout_and_holds_its_port(full_tier):
    r = run("fin-wait-2", fin_timeout=2, family=6)
    assert r.lifetime_whole_s == 2 and 1.9 < r.fin_wait_2_lifetime_s < 2.5
    assert r.orphan_timers == ["timewait"]
    assert (r.peer_state, r.held_state, r.answer_to_late_fin) == ("CLOSE_WAIT", "FIN_WAIT_2", "RST")
    assert (r.bind_while_orphaned, r.bind_after) == ("EADDRINUSE", "ok")  # bind() to [::1]:40000
    # the run really was on ::1: every captured segment and every row of the socket table
    assert {(s.saddr, s.daddr) for s in r.trace} == {("::1", "::1")}
    rows = r.socket_table.splitlines()[1:]
    assert len(rows) == 4 and all(row.split()[3].startswith("::1:") for row in rows)
    assert "::1:40000" in r.socket_table and "127.0.0.1" not in r.socket_table


@pytest.mark.parametrize(
    "bad",
    [
        {"fin_timeout": 0},
        {"fin_timeout": 121},
        {"fin_timeout": 1.5},
        {"fin_timeout": None},
        {"linger2": -1},
        {"linger2": 61},
        {"linger2": True},
        {"family": 5},
        {"family": True},
    ],
)
def test_bad_options_are_rejected(bad):
    with pytest.raises(ValueError):
        run("fin-wait-2", **bad)
