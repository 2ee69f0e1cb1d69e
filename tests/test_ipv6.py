"""IPv6 on the namespace's loopback: the experiments that take ``family=6`` run on ::1 and
show the same close, TIME_WAIT, lost final ACK, port exhaustion, resets and timeouts as over
IPv4."""

import re
from pathlib import Path

import pytest

from timewait.experiments import get, run
from timewait.experiments.base import REGISTRY
from timewait.experiments.held_last_ack import predict as predict_held
from timewait.experiments.orphan_retries import predict as predict_orphan
from timewait.lab import Lab, check_family

live = pytest.mark.live
# every registered experiment that takes ``family``
FAMILY_EXPERIMENTS = tuple(
    sorted(name for name, e in REGISTRY.items() if any(p.name == "family" for p in e.params))
)
CHAPTER = Path(__file__).resolve().parents[1] / "book" / "ipv6.md"


@live
@pytest.mark.parametrize("closer, local", [("client", "[::1]:40000"), ("server", "[::1]:5000")])
def test_four_way_close_over_ipv6_leaves_the_closer_in_time_wait_on_1(full_tier, closer, local):
    v6 = run("four-way-close", closer=closer, family=6)
    v4 = run("four-way-close", closer=closer)
    other = {"client": "server", "server": "client"}[closer]
    assert v6.end_states == {closer: "TIME_WAIT", other: "CLOSED"}
    assert v6.time_wait_timer_s == 60 and v6.close_segments == 4
    assert v6.trace.flag_sequence() == v4.trace.flag_sequence()
    assert {s.saddr for s in v6.trace} == {"::1"} and {s.saddr for s in v4.trace} == {"127.0.0.1"}
    assert f"::1:{'40000' if closer == 'client' else '5000'}" in v6.socket_table
    if v6.ss_time_wait is not None:
        assert [row.split()[2] for row in v6.ss_time_wait] == [local]


@live
@pytest.mark.parametrize("time_wait", [True, False])
def test_the_lost_final_ack_over_ipv6_meets_time_wait_or_a_reset(full_tier, time_wait):
    r = run("lost-final-ack", time_wait=time_wait, family=6)
    assert r.fin_retransmissions == 1 and r.rto_at_least_200ms
    assert r.trace[-3].note == "dropped" and r.trace[-3].flags == "ACK"
    assert {s.saddr for s in r.trace} == {"::1"}
    if time_wait:
        assert (r.closer_state, r.answer_to_retransmitted_fin, r.peer_error) == ("TIME_WAIT", "ACK", None)
        assert not r.rst_seen
    else:
        assert (r.closer_state, r.answer_to_retransmitted_fin, r.peer_error) == (
            "CLOSED",
            "RST",
            "ECONNRESET",
        )
        assert r.counters.get("TCPTimeWaitOverflow") == 1


@live
@pytest.mark.parametrize("tw_reuse, recovers", [(0, False), (2, True)])
def test_port_exhaustion_over_ipv6_and_tw_reuse_2_counts_1_as_loopback(full_tier, tw_reuse, recovers):
    r = run("port-exhaustion", ports=4, tw_reuse=tw_reuse, family=6)
    assert r.connections_before_exhaustion == r.time_wait_at_exhaustion == 4
    assert (r.failed_call, r.first_error) == ("connect", "EADDRNOTAVAIL")
    assert (r.recovered_after_s == 1.0) is recovers
    assert ("TWRecycled" in r.counters) is recovers


@live
@pytest.mark.parametrize("mode", ["linger-zero", "unread-data"])
def test_an_abortive_close_over_ipv6_sends_a_reset_and_leaves_no_time_wait(full_tier, mode):
    r = run("abortive-close", mode=mode, family=6)
    assert r.close_segment == "RST|ACK" and not r.time_wait_created
    assert r.peer_error == "ECONNRESET" and r.counters.get("TCPChallengeACK") == 1
    assert [s.flags for s in r.trace][-3:] == ["RST|ACK", "ACK", "RST"]
    assert {s.saddr for s in r.trace} == {"::1"}


@live
def test_a_held_last_ack_socket_over_ipv6_gives_up_after_tcp_retries2_as_over_ipv4(full_tier):
    v6 = run("held-last-ack", retries2=2, family=6)
    v4 = run("held-last-ack", retries2=2)
    fins, lifetime = predict_held(2, v6.first_rto_s)

    def outcome(r):
        return (
            r.last_ack_state,
            r.last_ack_timer,
            r.fin_transmissions,
            r.predicted_fins,
            r.backoff,
            r.end_state,
            r.socket_error,
            r.rst_sent,
            r.counters.get("TCPAbortOnTimeout"),
        )

    assert (
        outcome(v6)
        == outcome(v4)
        == ("LAST_ACK", "retransmit", 5, 5, [1, 1, 2, 4], "CLOSED", "ETIMEDOUT", False, 1)
    )
    assert v6.fin_transmissions == fins
    assert lifetime * 0.95 <= v6.lifetime_s < lifetime * 1.2 + 0.3
    assert {s.saddr for s in v6.trace} == {"::1"}


@live
def test_an_orphan_over_ipv6_retries_its_fin_as_often_as_over_ipv4_then_dies_silently(full_tier):
    v6 = run("orphan-retries", retries=2, family=6)
    v4 = run("orphan-retries", retries=2)
    fins, lifetime = predict_orphan(2, v6.first_rto_s)

    def outcome(r):
        return (
            r.namespace_default,
            r.last_ack_state,
            r.last_ack_timer,
            r.fins_before_last_ack,
            r.last_ack_retransmits,
            r.fin_transmissions,
            r.loss_probes,
            r.backoff,
            r.end_state,
            r.lifetime_rtos,
            r.rst_sent,
            r.counters.get("TCPAbortOnTimeout"),
        )

    assert (
        outcome(v6)
        == outcome(v4)
        == (0, "LAST_ACK", "retransmit", 3, 1, 5, 1, [1, 1, 2, 4], "CLOSED", 16, False, 1)
    )
    assert v6.fin_transmissions == fins
    assert lifetime * 0.95 <= v6.lifetime_s < lifetime * 1.2 + 0.3
    assert {s.saddr for s in v6.trace} == {"::1"}
    if v6.ss_source == "ss":
        as_v6 = {k: [row.replace("127.0.0.1", "[::1]") for row in rows] for k, rows in v4.ss_rows.items()}
        assert v6.ss_rows == as_v6 and "[::1]:5000 [::1]:40000" in v6.ss_rows["last-ack"][0]


TIMEOUT_OUTCOME = (
    "timer",
    "application_saw",
    "wire_while_waiting",
    "gave_up",
    "state_after_timeout",
    "peer_state_after_timeout",
    "kernel_counters",
    "afterwards",
    "end_states",
    "time_wait",
    "error",
    "client_rsts",
)


@live
@pytest.mark.parametrize("kind", ["recv-timeout", "user-timeout", "close-timeout"])
def test_a_timeout_over_ipv6_ends_the_connection_as_over_ipv4(full_tier, kind):
    v6 = run("timeout-close", kind=kind, family=6)
    v4 = run("timeout-close", kind=kind)
    assert {f: getattr(v6, f) for f in TIMEOUT_OUTCOME} == {f: getattr(v4, f) for f in TIMEOUT_OUTCOME}
    assert {s.saddr for s in v6.trace} == {"::1"}
    if kind == "recv-timeout":
        assert (v6.end_states["client"], v6.time_wait) == ("TIME_WAIT", "client, 60 s timer")
    else:
        assert v6.state_after_timeout.endswith("CLOSED") and v6.time_wait == "none"
        assert v6.kernel_counters == {"TCPAbortOnTimeout": 1, "TCPLossProbes": 1, "TW": 0}
        assert 0.95 <= v6.after_first_timeout_retransmission_s < 1.3


CLOSE_WAIT_OUTCOME = (
    "close_wait_at_start",
    "close_wait_after_hold",
    "close_wait_timer",
    "client_states_after_hold",
    "reads_after_fin",
    "write_into_leak",
    "server_descriptors",
    "accepted",
    "accept_errors",
    "client_connects",
    "reply_to_queued_request",
    "listen_queue",
)


@live
@pytest.mark.parametrize("options", [{}, {"fd_limit": 8, "connections": 5}], ids=["no-limit", "fd-limit"])
def test_close_wait_over_ipv6_leaks_as_over_ipv4(full_tier, options):
    v6 = run("close-wait-leak", hold=1, family=6, **options)
    v4 = run("close-wait-leak", hold=1, **options)
    assert {f: getattr(v6, f) for f in CLOSE_WAIT_OUTCOME} == {f: getattr(v4, f) for f in CLOSE_WAIT_OUTCOME}
    if options:
        assert (v6.accepted, v6.accept_errors, v6.listen_queue) == (3, {"EMFILE": 2}, 2)
    else:
        assert v6.close_wait_after_hold == 3 and v6.close_wait_timer == "off"
        assert v6.write_into_leak == "sent, then EPIPE"
    assert "::1:5000" in v6.socket_table_after_hold and "127.0.0.1" not in v6.socket_table_after_hold


@pytest.mark.parametrize("name", FAMILY_EXPERIMENTS)
@pytest.mark.parametrize("bad", [5, 0, "6", 6.0, True])
def test_family_must_be_4_or_6(name, bad):
    with pytest.raises(ValueError, match=r"family: must be one of 4, 6"):
        get(name).check({"family": bad})


def test_the_ipv6_chapter_names_every_experiment_that_takes_family():
    named = set(re.findall(r"`([a-z0-9-]+)`", CHAPTER.read_text()))
    assert len(FAMILY_EXPERIMENTS) >= 9
    assert not set(FAMILY_EXPERIMENTS) - named, sorted(set(FAMILY_EXPERIMENTS) - named)


@pytest.mark.parametrize("name", FAMILY_EXPERIMENTS)
def test_family_defaults_to_4(name):
    assert get(name).check({})["family"] == 4


def test_port_exhaustion_over_ipv6_keeps_its_default_address(full_tier):
    with pytest.raises(ValueError, match=r"address: family=6 runs on ::1"):
        run("port-exhaustion", family=6, address="192.0.2.1")


@pytest.mark.parametrize("bad", [5, "4", True, None])
def test_the_lab_checks_the_family(bad):
    with pytest.raises(ValueError, match=r"family: must be 4 or 6"):
        check_family(bad)
    with pytest.raises(ValueError, match=r"family: must be 4 or 6"):
        Lab(isolated=False).use_family(bad)


def test_the_lab_uses_the_familys_loopback_address():
    lab = Lab(isolated=False)
    assert (lab.family, lab.address) == (4, "127.0.0.1")
    assert lab.use_family(6) == "::1" and lab.address == "::1"
