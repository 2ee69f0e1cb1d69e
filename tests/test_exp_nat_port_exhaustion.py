"""nat-port-exhaustion: behind SNAT with a few ports, the connection past the budget has its
SYNs dropped at the router and connect() times out; closed connections' TIME_WAIT entries
are evicted by a SYN that is ahead of them; keep-alive needs one mapping."""

import pytest

from timewait import tiers
from timewait.experiments import get, run


@pytest.fixture(scope="module")
def topology_ok(full_tier):
    ok, why = tiers.topology_support()
    if not ok:
        pytest.skip(why)


@pytest.mark.live
@pytest.mark.parametrize("ports,connections", [(4, 6), (8, 10)])
def test_past_the_port_budget_the_syn_is_dropped_and_connect_times_out(topology_ok, ports, connections):
    result = run("nat-port-exhaustion", ports=ports, connections=connections)
    assert result.connected == ports and result.mappings == ports
    assert result.outcomes == ["ok"] * ports + ["ETIMEDOUT"] * (connections - ports)
    assert "EADDRNOTAVAIL" not in result.errors
    assert result.gave_up_after_s in (2, 3)  # tcp_syn_retries=1: it gives up within seconds
    # Every SYN of a failed connect() was seen on the client's link and dropped by the router.
    assert len(result.failed_syn_times_s) == connections - ports
    assert result.failed_syns >= 2 * (connections - ports)
    assert result.syns_dropped == result.failed_syns
    assert result.counters == {"insert_failed": result.failed_syns, "drop": result.failed_syns}
    assert result.entries_by_state == {"ESTABLISHED": ports}
    # The hosts' holder processes ran in the experiment's process group, which is gone.
    assert len(result.host_pids) == 3 and not any(_alive(p) for p in result.host_pids)


def _alive(pid):
    try:
        return open(f"/proc/{pid}/cmdline").read().split("\0")[:2] == ["sleep", "3600"]
    except FileNotFoundError:
        return False


@pytest.mark.live
def test_a_second_snat_address_is_not_used_by_one_client_for_one_server(topology_ok):
    result = run("nat-port-exhaustion", addresses=2)
    assert result.budget == 8
    assert result.addresses_used == 1 and result.connected == 4 and result.failed == 2


@pytest.mark.live
def test_closed_connections_free_their_mapping_when_the_new_syn_is_ahead(topology_ok):
    result = run("nat-port-exhaustion", hold="closed", connections=12)
    assert result.mappings <= 4 and result.connected + result.failed == 12
    assert result.evictions == result.connected - 4
    assert result.rule_predicted_all is True
    assert all(e == "ETIMEDOUT" for e in result.errors)
    assert set(result.entries_by_state) == {"TIME_WAIT"}


@pytest.mark.live
def test_keep_alive_needs_one_mapping(topology_ok):
    result = run("nat-port-exhaustion", hold="closed", keepalive=True, connections=12)
    assert result.outcomes == ["ok"] * 12
    assert result.mappings == 1 and result.failed == 0 and result.counters == {}


def test_options_are_checked():
    exp = get("nat-port-exhaustion")
    with pytest.raises(ValueError, match=r"ports: must be between 1 and 16"):
        exp.check({"ports": 0})
    with pytest.raises(ValueError, match=r"hold: must be one of open, closed"):
        exp.check({"hold": "half"})


def test_keepalive_needs_closed(topology_ok):
    with pytest.raises(ValueError, match="keepalive: one connection carries every request"):
        run("nat-port-exhaustion", keepalive=True)
