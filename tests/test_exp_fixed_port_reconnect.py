"""fixed-port-reconnect: bind() needs SO_REUSEADDR; connect() then needs timestamps."""
import pytest

from timewait.experiments import run
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
    assert r.old_state == "TIME_WAIT"
    assert (r.reconnect_error, r.failed_at) == EXPECTED[(timestamps, reuseaddr)]
    # tcp_tw_recycle was removed in Linux 4.12; tcp_tw_reuse shows that the probe works
    assert r.tw_sysctls == {"net.ipv4.tcp_tw_recycle": "absent", "net.ipv4.tcp_tw_reuse": "present"}
    if r.reconnect_error is None:
        assert r.counters.get("TWRecycled") == 1 and r.old_state_after == "gone (recycled)"
    else:
        assert "TWRecycled" not in r.counters and r.old_state_after == "TIME_WAIT"


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


def test_the_sysctl_probe_sees_sysctls_that_exist():
    # Guards the "absent" above: the probe finds a sysctl every modern kernel has.
    if not detect_tier().at_least("host"):
        pytest.skip(f"needs a Linux /proc; this machine is {detect_tier()}")
    assert Lab.sysctl_exists("net.ipv4.tcp_tw_reuse")
    assert not Lab.sysctl_exists("net.ipv4.tcp_no_such_option")


@pytest.mark.parametrize("bad", [{"timestamps": 0}, {"reuseaddr": "on"}, {"port": 40000}])
def test_bad_options_are_rejected(bad):
    with pytest.raises(ValueError):
        run("fixed-port-reconnect", **bad)
