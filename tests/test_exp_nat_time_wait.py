"""nat-time-wait: two clients behind one NAT port reach a server that holds TIME_WAIT for that
4-tuple. The TIME_WAIT admits B's SYN when its timestamp is newer than A's last one, or (without
a timestamp to compare) its sequence number is ahead of the old connection's; otherwise it
answers with an ACK of the old connection, B resets it and its retransmitted SYN gets through."""

import pytest

from tests.test_topology import _host_network
from timewait import tiers
from timewait.experiments import get, run
from timewait.experiments.nat_time_wait import predict


@pytest.fixture(scope="module")
def topology_ok(full_tier):
    ok, why = tiers.topology_support()
    if not ok:
        pytest.skip(why)


def _same_tuple_meets_time_wait(result):
    assert result.same_translated_tuple
    assert result.server_state_before_b == "TIME_WAIT"
    assert result.b_connected


def _admitted(result):
    assert result.predicted == result.outcome == "admitted"
    assert result.first_answer == "SYN|ACK"
    assert result.synack_isn_from_time_wait is True  # the TIME_WAIT chose it: old snd_nxt + 65537
    assert result.b_syns == 1 and result.b_reset is False


def _refused(result):
    assert result.predicted == result.outcome == "refused"
    assert result.first_answer == "ACK" and result.answer_acks_old_connection is True
    assert result.b_reset is True and result.b_syns == 2
    # The suspicious ACK makes B retransmit at once, not after the 1 s initial RTO.
    assert result.retransmit_after_ms < 500


@pytest.mark.live
@pytest.mark.parametrize("b_isn", ["behind", "ahead"])
def test_a_newer_timestamp_admits_the_syn_whatever_its_sequence_number(topology_ok, b_isn):
    result = run("nat-time-wait", timestamps=2, b_isn=b_isn)
    _same_tuple_meets_time_wait(result)
    assert result.b_syn_timestamp == "newer" and result.b_syn_sequence == b_isn
    _admitted(result)
    assert result.server_counters == {}


@pytest.mark.live
@pytest.mark.parametrize("b_isn", ["behind", "ahead"])
def test_an_older_timestamp_is_refused_by_paws_whatever_its_sequence_number(topology_ok, b_isn):
    result = run("nat-time-wait", timestamps=2, a_ahead_s=3600, b_isn=b_isn)
    _same_tuple_meets_time_wait(result)
    assert result.b_syn_timestamp == "older" and result.b_syn_sequence == b_isn
    _refused(result)
    assert result.server_counters.get("PAWSTimewait", result.server_counters.get("PAWSEstab")) == 1


@pytest.mark.live
def test_without_timestamps_a_sequence_number_ahead_is_admitted(topology_ok):
    result = run("nat-time-wait", timestamps=0, b_isn="ahead")
    _same_tuple_meets_time_wait(result)
    assert result.b_syn_timestamp == "none" and result.b_syn_sequence == "ahead"
    _admitted(result)


@pytest.mark.live
def test_without_timestamps_a_sequence_number_behind_is_refused_and_retried(topology_ok):
    before = _host_network()
    result = run("nat-time-wait", timestamps=0, b_isn="behind")
    _same_tuple_meets_time_wait(result)
    assert result.b_syn_timestamp == "none" and result.b_syn_sequence == "behind"
    _refused(result)
    assert result.server_counters.get("PAWSTimewait", 0) == 0
    # The hosts' holder processes ran in the experiment's process group, which is gone, and
    # the host's own links, routes, conntrack timeouts and ruleset are as they were.
    assert len(result.host_pids) == 4 and not any(_alive(p) for p in result.host_pids)
    assert _host_network() == before


@pytest.mark.live
def test_with_linux_defaults_the_outcome_is_the_one_the_rule_predicts(topology_ok):
    result = run("nat-time-wait")
    _same_tuple_meets_time_wait(result)
    assert result.b_syn_timestamp in ("newer", "older")  # timestamps on, random offsets
    (_admitted if result.outcome == "admitted" else _refused)(result)


def _alive(pid):
    try:
        return open(f"/proc/{pid}/cmdline").read().split("\0")[:2] == ["sleep", "3600"]
    except FileNotFoundError:
        return False


@pytest.mark.parametrize(
    "ts_recent, tsval, seq, rcv_nxt, expected",
    [
        (1000, 2000, 5, 10, "admitted"),  # newer timestamp, sequence behind
        (1000, 500, 50, 10, "refused"),  # PAWS: older timestamp, sequence ahead
        (1000, 1000, 50, 10, "admitted"),  # equal timestamp: the sequence number decides
        (1000, 1000, 5, 10, "refused"),
        (None, None, 50, 10, "admitted"),  # no timestamps
        (None, None, 10, 10, "refused"),  # rcv_nxt itself is not after rcv_nxt
        (1000, None, 5, 10, "refused"),  # the SYN carries none: sequence only
        (0xFFFFFF00, 0x10, 5, 10, "admitted"),  # the timestamp wrapped: still newer
        (None, None, 0xFFFFFFF0, 10, "refused"),  # just behind, across the wrap
    ],
)
def test_the_prediction_follows_tcp_timewait_state_process(ts_recent, tsval, seq, rcv_nxt, expected):
    assert predict(ts_recent, tsval, seq, rcv_nxt) == expected


def test_options_are_checked():
    exp = get("nat-time-wait")
    with pytest.raises(ValueError, match=r"timestamps: must be one of 1, 2, 0"):
        exp.check({"timestamps": 3})
    with pytest.raises(ValueError, match=r"a_ahead_s: must be between 0 and 86400"):
        exp.check({"a_ahead_s": -1})
    with pytest.raises(ValueError, match=r"b_isn: must be one of kernel, ahead, behind"):
        exp.check({"b_isn": "random"})
