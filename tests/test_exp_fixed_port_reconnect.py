"""fixed-port-reconnect: bind() needs SO_REUSEADDR; connect() then needs timestamps, and
tcp_tw_reuse has no say for a port the client bound itself."""

import pytest

from timewait.experiments import run
from timewait.experiments.common import host_has_ipv6_loopback
from timewait.lab import Lab
from timewait.tiers import detect_tier

pytestmark = pytest.mark.live

# (timestamps, reuseaddr) -> (reconnect_error, failed_at)
EXPECTED = {
    (True, True): (None, None),
    (True, False): ("EADDRINUSE", "bind"),
    (False, True): ("EADDRNOTAVAIL", "connect"),
    (False, False): ("EADDRINUSE", "bind"),
}


@pytest.mark.parametrize("timestamps,reuseaddr", list(EXPECTED))
def test_reconnect_from_the_same_port(full_tier, timestamps, reuseaddr):
    r = run("fixed-port-reconnect", timestamps=timestamps, reuseaddr=reuseaddr)
    assert r.old_state == "TIME_WAIT" and r.time_wait_tuple == ["127.0.0.1", 40000, "127.0.0.1", 5000]
    assert (r.reconnect_error, r.failed_at) == EXPECTED[(timestamps, reuseaddr)]
    # tcp_tw_recycle was removed in Linux 4.12; tcp_tw_reuse shows that the probe works
    assert r.tw_sysctls == {"net.ipv4.tcp_tw_recycle": "absent", "net.ipv4.tcp_tw_reuse": "present"}
    if r.reconnect_error is None:
        assert r.counters.get("TWRecycled") == 1 and r.old_state_after == "gone (recycled)"
    else:
        assert "TWRecycled" not in r.counters and r.old_state_after == "TIME_WAIT"


@pytest.mark.parametrize("timestamps,reuseaddr", list(EXPECTED))
def test_over_ipv6_the_same_4_tuple_on_1_meets_the_same_rules(full_tier, timestamps, reuseaddr):
    r = run("fixed-port-reconnect", timestamps=timestamps, reuseaddr=reuseaddr, family=6)
    assert r.time_wait_tuple == ["::1", 40000, "::1", 5000]  # the socket table's TIME_WAIT row
    assert r.old_state == "TIME_WAIT"
    assert (r.reconnect_error, r.failed_at) == EXPECTED[(timestamps, reuseaddr)]
    if r.reconnect_error is None:
        assert r.counters == {"TW": 1, "TWRecycled": 1} and r.old_state_after == "gone (recycled)"
    else:
        assert r.counters == {"TW": 1} and r.old_state_after == "TIME_WAIT"


@pytest.mark.parametrize("timestamps", [True, False])
def test_tcp_tw_reuse_off_changes_nothing_for_a_bound_port(full_tier, timestamps):
    # tcp_twsk_unique(): twp is NULL for a bound port, so only ts_recent_stamp decides.
    r = run("fixed-port-reconnect", timestamps=timestamps, reuseaddr=True, tw_reuse=0)
    assert r.tw_reuse_value == 0  # the namespace really ran with tcp_tw_reuse=0
    assert r.old_state == "TIME_WAIT"
    assert (r.reconnect_error, r.failed_at) == EXPECTED[(timestamps, True)]
    if timestamps:
        assert r.counters.get("TWRecycled") == 1 and r.old_state_after == "gone (recycled)"
    else:
        assert "TWRecycled" not in r.counters and r.old_state_after == "TIME_WAIT"


def test_without_tw_reuse_the_namespace_keeps_its_default(full_tier):
    r = run("fixed-port-reconnect")
    assert r.params["tw_reuse"] is None
    assert r.tw_reuse_value == 2  # Linux's default: reuse for loopback connections only


def test_setting_tw_reuse_on_the_host_tier_shows_the_recording(monkeypatch):
    # The host's sysctls are never touched: a run that sets tcp_tw_reuse is not a host run.
    monkeypatch.setenv("TIMEWAIT_TIER", "host")
    r = run("fixed-port-reconnect", timestamps=True, reuseaddr=True, tw_reuse=0)
    assert r.recorded and r.tier == detect_tier().name and r.tw_reuse_value == 0
    assert r.reconnect_error is None and r.counters.get("TWRecycled") == 1


@pytest.mark.parametrize("reuseaddr", [True, False])
def test_the_host_tier_runs_on_free_host_ports(monkeypatch, reuseaddr):
    if not detect_tier().at_least("host"):
        pytest.skip(f"needs Linux sockets; this machine is {detect_tier()}")
    monkeypatch.setenv("TIMEWAIT_TIER", "host")
    r = run("fixed-port-reconnect", timestamps=True, reuseaddr=reuseaddr)
    if r.recorded:
        pytest.skip("this host has tcp_timestamps=0: the host run is not allowed")
    assert r.tier == "host" and r.counters == {}
    assert r.tw_sysctls["net.ipv4.tcp_tw_recycle"] == "absent"
    assert (r.reconnect_error, r.failed_at) == EXPECTED[(True, reuseaddr)]
    # The value in force is the host's own, read (never written) during the run.
    with open("/proc/sys/net/ipv4/tcp_tw_reuse") as fh:
        assert r.tw_reuse_value == int(fh.read())


@pytest.mark.parametrize("reuseaddr", [True, False])
def test_over_ipv6_the_host_tier_runs_on_1(monkeypatch, reuseaddr):
    if not detect_tier().at_least("host") or not host_has_ipv6_loopback():
        pytest.skip("needs Linux sockets and ::1 on the host's lo")
    monkeypatch.setenv("TIMEWAIT_TIER", "host")
    r = run("fixed-port-reconnect", timestamps=True, reuseaddr=reuseaddr, family=6)
    if r.recorded:
        pytest.skip("this host has tcp_timestamps=0: the host run is not allowed")
    assert r.tier == "host" and r.time_wait_tuple[::2] == ["::1", "::1"]
    assert (r.reconnect_error, r.failed_at) == EXPECTED[(True, reuseaddr)]


def test_the_sysctl_probe_sees_sysctls_that_exist():
    # Guards the "absent" above: the probe finds a sysctl every modern kernel has.
    if not detect_tier().at_least("host"):
        pytest.skip(f"needs a Linux /proc; this machine is {detect_tier()}")
    assert Lab.sysctl_exists("net.ipv4.tcp_tw_reuse")
    assert not Lab.sysctl_exists("net.ipv4.tcp_no_such_option")


@pytest.mark.parametrize(
    "bad", [{"timestamps": 0}, {"reuseaddr": "on"}, {"port": 40000}, {"family": 5}, {"family": "6"}]
)
def test_bad_options_are_rejected(bad):
    with pytest.raises(ValueError):
        run("fixed-port-reconnect", **bad)


@pytest.mark.parametrize("bad", [3, -1, True, "0"])
def test_a_bad_tw_reuse_names_the_option_and_its_values(bad):
    with pytest.raises(ValueError, match=r"^tw_reuse: must be one of None, 0, 1, 2, got "):
        run("fixed-port-reconnect", tw_reuse=bad)
