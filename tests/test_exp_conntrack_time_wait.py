"""conntrack-time-wait: the router's conntrack entry has a TIME_WAIT of its own, 120 s by
default, whichever end closed, and independent of the closer's 60 s socket TIME_WAIT."""

import pytest

from timewait import tiers
from timewait.experiments import get, run


@pytest.fixture(scope="module")
def topology_ok(full_tier):
    ok, why = tiers.topology_support()
    if not ok:
        pytest.skip(why)


@pytest.fixture(scope="module", params=["client", "server"])
def closed(request, topology_ok):
    return run("conntrack-time-wait", closer=request.param)


@pytest.mark.live
def test_the_closer_holds_60_s_and_the_router_120_s_whoever_closed(closed):
    closer = closed.params["closer"]
    other = {"client": "server", "server": "client"}[closer]
    assert closed.end_states == {closer: "TIME_WAIT", other: "CLOSED"}
    assert closed.time_wait_side == closer and closed.socket_timer_s == 60
    assert closed.conntrack_state == "TIME_WAIT"
    assert closed.conntrack_time_wait_s == 120
    assert closed.conntrack_timer_matches_sysctl and 118 <= closed.conntrack_timer_s <= 120
    assert "ASSURED" in closed.conntrack_table
    flags = closed.trace.flag_sequence()
    assert flags[:3] == [("client", "SYN"), ("server", "SYN|ACK"), ("client", "ACK")]
    assert flags[-1] == (closer, "ACK") and all(s.link == "router:eth1" for s in closed.trace)


@pytest.mark.live
def test_the_sysctl_sets_the_entry_s_time_wait_and_not_the_socket_s(topology_ok):
    result = run("conntrack-time-wait", ct_time_wait=30)
    assert result.conntrack_time_wait_s == 30 and 28 <= result.conntrack_timer_s <= 30
    assert result.socket_timer_s == 60


@pytest.mark.live
def test_a_short_conntrack_time_wait_forgets_the_connection_while_the_socket_waits(topology_ok):
    result = run("conntrack-time-wait", ct_time_wait=2, watch=4.0)
    assert result.entry_gone_after_s == 2
    assert result.closer_socket_when_gone == "TIME_WAIT"
    assert result.samples[0][1:] == ["TIME_WAIT", "TIME_WAIT"]
    assert result.samples[-1][1:] == ["TIME_WAIT", "gone"]


@pytest.mark.live
def test_a_new_syn_on_the_tuple_replaces_the_time_wait_entry(topology_ok):
    result = run("conntrack-time-wait", closer="server", reopen=True)
    assert result.reopen_connected
    assert result.reopen_entries == 1 and result.reopen_entry_state == "ESTABLISHED"
    assert result.reopen_entry_is_new is True
    assert [f for f in result.trace.flag_sequence()].count(("client", "SYN")) == 2


@pytest.mark.live
def test_the_run_leaves_no_host_process_behind(closed):
    # The hosts' holder processes ran in the experiment's process group, which is gone.
    assert closed.host_pids and all(not _alive(p) for p in closed.host_pids)


def _alive(pid):
    try:
        return open(f"/proc/{pid}/cmdline").read().split("\0")[:2] == ["sleep", "3600"]
    except FileNotFoundError:
        return False


@pytest.mark.live
def test_over_ipv6_the_router_keeps_the_same_time_wait(topology_ok):
    result = run("conntrack-time-wait", family=6)
    assert result.end_states == {"client": "TIME_WAIT", "server": "CLOSED"}
    assert result.socket_timer_s == 60 and result.conntrack_state == "TIME_WAIT"
    assert result.conntrack_time_wait_s == 120 and result.conntrack_timer_matches_sysctl
    assert "[fd00:1::2]:40000 -> [fd00:100::2]:80" in result.conntrack_table
    assert {s.saddr for s in result.trace} == {"fd00:1::2", "fd00:100::2"}


def test_reopen_needs_the_server_to_close_first(topology_ok):
    with pytest.raises(ValueError, match="reopen: needs closer='server'"):
        run("conntrack-time-wait", closer="client", reopen=True)


def test_options_are_checked():
    exp = get("conntrack-time-wait")
    with pytest.raises(ValueError, match=r"ct_time_wait: must be one of None, 2, 30, 240"):
        exp.check({"ct_time_wait": 5})
    with pytest.raises(ValueError, match=r"watch: must be between 0 and 10"):
        exp.check({"watch": 11})
    with pytest.raises(ValueError, match=r"family: must be one of 4, 6"):
        exp.check({"family": 5})
