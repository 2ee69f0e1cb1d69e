"""Topologies: hosts as namespaces inside an experiment's own, links, routing, NAT, conntrack."""

import os
import subprocess

import pytest

from timewait import conntrack, experiments, sandbox, tiers
from timewait.topology import check_host_sysctl


def _host_network():
    """The host's links, routes, conntrack timeouts and ruleset: none of it may change."""
    state = {
        "links": subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout,
        "routes": subprocess.run(["ip", "route"], capture_output=True, text=True).stdout,
        "forward": open("/proc/sys/net/ipv4/ip_forward").read(),
    }
    path = "/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_time_wait"
    if os.path.exists(path):
        state["ct_time_wait"] = open(path).read()
    if os.geteuid() == 0:
        state["nft"] = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout
    return state


def _alive(pids):
    return [p for p in pids if os.path.exists(f"/proc/{p}")]


@pytest.fixture(scope="module")
def topology_ok(full_tier):
    ok, why = tiers.topology_support()
    if not ok:
        pytest.skip(why)


def test_a_connection_through_the_router_is_tracked_and_everything_vanishes(topology_ok):
    before = _host_network()
    out = sandbox.run_body("tests.topology_bodies:one_connection", {}, timeout=30)
    # Each host is a namespace of its own, not the experiment's.
    assert out["router_ns"] != out["own_ns"]
    [entry] = out["entries"]
    assert entry["state"] == "TIME_WAIT" and entry["assured"]
    assert entry["original"] == ["10.0.1.2", 40000, "10.0.100.2", 80]
    assert 100 <= entry["timeout_s"] <= out["timeouts"]["time_wait"]
    assert out["client_states"] == ["TIME_WAIT"]
    # A veth capture sees each segment once, in both directions, and names its link.
    assert out["links"] == ["router:eth1"]
    assert out["flags"][:3] == ["SYN", "SYN|ACK", "ACK"]
    assert out["flags"].count("FIN|ACK") == 2
    assert _alive(out["pids"]) == []
    assert _host_network() == before


def test_ipv6_goes_through_the_router_too(topology_ok):
    out = sandbox.run_body("tests.topology_bodies:one_connection", {"family": 6}, timeout=30)
    [entry] = out["entries"]
    assert entry["family"] == 6 and entry["original"][2] == "fd00:100::2"
    assert entry["state"] == "TIME_WAIT"


def test_a_host_sysctl_is_set_on_that_host_only(topology_ok):
    name = "net.netfilter.nf_conntrack_tcp_timeout_time_wait"
    host = (
        open("/proc/sys/" + name.replace(".", "/")).read().strip()
        if os.path.exists("/proc/sys/" + name.replace(".", "/"))
        else None
    )
    out = sandbox.run_body("tests.topology_bodies:set_host_sysctl", {"name": name, "value": 7}, timeout=20)
    assert out["inside"] == "7" and out["outside"] != "7"
    if host is not None:
        assert open("/proc/sys/" + name.replace(".", "/")).read().strip() == host


def test_a_hanging_topology_is_killed_with_its_hosts(topology_ok, tmp_path):
    pid_file = tmp_path / "pids"
    with pytest.raises(sandbox.ExperimentTimeout, match="waiting forever with hosts up"):
        sandbox.run_body(
            "tests.topology_bodies:hangs_with_a_topology", {"pid_file": str(pid_file)}, timeout=8
        )
    pids = [int(p) for p in pid_file.read_text().split()]
    assert len(pids) == 3  # router, client, server
    assert [p for p in pids if _is_holder(p)] == []


def _is_holder(pid):
    try:
        return open(f"/proc/{pid}/cmdline").read().split("\0")[:2] == ["sleep", "3600"]
    except FileNotFoundError:
        return False


def test_bad_host_sysctls_and_names_are_refused():
    with pytest.raises(
        ValueError, match=r"nf_conntrack_tcp_timeout_time_wait: must be an integer between 1 and"
    ):
        check_host_sysctl("net.netfilter.nf_conntrack_tcp_timeout_time_wait", 0)
    with pytest.raises(ValueError, match="is not one a topology sets"):
        check_host_sysctl("kernel.panic", 1)
    with pytest.raises(ValueError, match="ip_local_port_range: must be 'low high'"):
        check_host_sysctl("net.ipv4.ip_local_port_range", "9 2")


def test_conntrack_lines_parse_with_the_translated_tuple():
    line = (
        "ipv4     2 tcp      6 117 TIME_WAIT src=10.0.1.2 dst=10.0.100.2 sport=40000 dport=80 "
        "src=10.0.100.2 dst=10.0.100.1 sport=80 dport=61000 [ASSURED] mark=0 zone=0 use=2\n"
        "ipv6     10 tcp      6 431999 ESTABLISHED src=fd00:0001:0000:0000:0000:0000:0000:0002 "
        "dst=fd00:0100:0000:0000:0000:0000:0000:0002 sport=5 dport=80 "
        "src=fd00:0100:0000:0000:0000:0000:0000:0002 dst=fd00:0001:0000:0000:0000:0000:0000:0002 "
        "sport=80 dport=5 [ASSURED] mark=0 zone=0 use=2\n"
        "ipv4     2 udp      17 20 src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2 [UNREPLIED] "
        "src=2.2.2.2 dst=1.1.1.1 sport=2 dport=1 mark=0 zone=0 use=2\n"
    )
    nat, v6 = conntrack.parse(line)
    assert nat.state == "TIME_WAIT" and nat.timeout_s == 117 and nat.translated
    assert nat.reply == ("10.0.100.2", 80, "10.0.100.1", 61000)
    assert v6.family == 6 and v6.original[0] == "fd00:1::2" and not v6.translated
    stats = conntrack.parse_stats(
        "entries found insert_failed drop\n00000002 00000001 0000000a 00000000\n"
        "00000002 00000000 00000001 00000003\n"
    )
    assert stats == {"found": 1, "insert_failed": 11, "drop": 3}


def test_without_veth_or_nat_a_topology_experiment_shows_its_recording(monkeypatch, full_tier):
    monkeypatch.setattr(tiers, "TOPOLOGY_CHECK", "exit 3")
    tiers.topology_support.cache_clear()
    try:
        ok, why = tiers.topology_support()
        assert not ok and "veth" in why and "one private namespace works" in why
        names = [n for n, e in experiments.REGISTRY.items() if e.topology]
        for name in names:
            result = experiments.run(name)
            assert result.recorded and "veth" in result.notice
    finally:
        tiers.topology_support.cache_clear()


def test_timewait_tier_says_whether_topologies_work(topology_ok, capsys):
    from timewait.cli import main

    assert main(["tier"]) == 0
    out = capsys.readouterr().out
    assert "topologies (Part III): yes: veth links, NAT and connection tracking work" in out
