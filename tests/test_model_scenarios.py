"""Scenarios: the segments exchanged, the states passed through and the named outcomes."""

import json
from itertools import pairwise

import pytest

from timewait.model import OUTCOMES, PARAMS, list_scenarios, simulate
from timewait.model.scenarios import REGISTRY, Scenario, get, lost_fin, register, state_at

HANDSHAKE = [("client", "SYN"), ("server", "SYN|ACK"), ("client", "ACK")]


def states_of(result, endpoint):
    return [s for _, who, s in result.timeline if who == endpoint]


def test_four_way_close_from_the_client():
    r = simulate("four-way-close")
    assert r.flag_sequence() == HANDSHAKE + [
        ("client", "FIN|ACK"),
        ("server", "ACK"),
        ("server", "FIN|ACK"),
        ("client", "ACK"),
    ]
    assert r.outcome == "clean-close"
    assert r.end_states == {"client": "TIME_WAIT", "server": "CLOSED"}
    assert states_of(r, "client")[-4:] == ["FIN_WAIT_1", "FIN_WAIT_2", "TIME_WAIT", "CLOSED"]
    assert states_of(r, "server")[-3:] == ["CLOSE_WAIT", "LAST_ACK", "CLOSED"]


def test_four_way_close_from_the_server_leaves_the_server_in_time_wait():
    r = simulate("four-way-close", closer="server")
    assert r.flag_sequence()[3:] == [
        ("server", "FIN|ACK"),
        ("client", "ACK"),
        ("client", "FIN|ACK"),
        ("server", "ACK"),
    ]
    assert r.end_states == {"client": "CLOSED", "server": "TIME_WAIT"}


def test_merged_close_has_three_segments_and_skips_fin_wait_2():
    r = simulate("merged-close")
    assert r.flag_sequence()[3:] == [("client", "FIN|ACK"), ("server", "FIN|ACK"), ("client", "ACK")]
    assert "FIN_WAIT_2" not in states_of(r, "client")
    assert r.end_states == {"client": "TIME_WAIT", "server": "CLOSED"}


def test_simultaneous_close_passes_through_closing_on_both_sides():
    r = simulate("simultaneous-close")
    assert r.flag_sequence(False)[3:5] == [("client", "FIN|ACK"), ("server", "FIN|ACK")]
    for side in ("client", "server"):
        assert "CLOSING" in states_of(r, side)
    assert r.end_states == {"client": "TIME_WAIT", "server": "TIME_WAIT"}


def test_data_segments_are_psh_ack_and_acknowledged():
    r = simulate("four-way-close", request_bytes=100, response_bytes=200)
    data = [s for s in r.trace if s.flags == "PSH|ACK"]
    assert [(s.src, s.length) for s in data] == [("client", 100), ("server", 200)]
    final_ack = r.trace[-1]
    assert (final_ack.src, final_ack.flags, final_ack.seq, final_ack.ack) == ("client", "ACK", 102, 202)


def test_time_wait_lasts_the_configured_time():
    for tw in (0.0, 30.0, 60.0):
        r = simulate("four-way-close", time_wait=tw)
        entered = next(t for t, who, s in r.timeline if who == "client" and s == "TIME_WAIT")
        left = [t for t, who, s in r.timeline if who == "client" and s == "CLOSED"][-1]
        assert left - entered == pytest.approx(tw)


def test_time_wait_in_msls():
    r = simulate("four-way-close", time_wait_msl=1, msl=10)
    entered = next(t for t, w, s in r.timeline if w == "client" and s == "TIME_WAIT")
    assert state_at(r.timeline, "client", entered + 9.99) == "TIME_WAIT"
    assert state_at(r.timeline, "client", entered + 10.0) == "CLOSED"


def test_lost_final_ack_with_time_wait_is_a_clean_close():
    r = simulate("lost-final-ack")
    assert r.outcome == "clean-close"
    assert r.flag_sequence()[3:] == [
        ("client", "FIN|ACK"),
        ("server", "ACK"),
        ("server", "FIN|ACK"),
        ("client", "ACK"),
        ("server", "FIN|ACK"),
        ("client", "ACK"),
    ]
    assert r.trace[6].note == "dropped" and r.trace[7].note == "retransmission"
    assert r.end_states == {"client": "TIME_WAIT", "server": "CLOSED"}


def test_lost_final_ack_without_time_wait_is_a_peer_reset():
    r = simulate("lost-final-ack", time_wait_msl=0)
    assert r.outcome == "peer-reset"
    assert r.flag_sequence()[-2:] == [("server", "FIN|ACK"), ("client", "RST")]
    rst = r.trace[-1]
    assert rst.seq == 2  # RFC 9293: <SEQ=SEG.ACK><CTL=RST>
    assert r.end_states == {"client": "CLOSED", "server": "CLOSED"}


def test_fin_retransmissions_back_off_exponentially():
    r = simulate("lost-fin", fin_losses=4, rto=0.2)
    fins = [s.t for s in r.trace if s.src == "client" and s.flags == "FIN|ACK"]
    gaps = [round(b - a, 6) for a, b in pairwise(fins)]
    assert gaps == [0.2, 0.4, 0.8, 1.6]
    assert r.outcome == "clean-close"


def test_a_side_gives_up_after_its_retransmissions():
    r = simulate("lost-fin", fin_losses=4, max_retries=3)
    assert r.outcome == "gave-up"
    assert r.final_states["client"] == "CLOSED"


def test_an_unknown_connection_answers_with_a_reset():
    # Server never sees the client's final ACK and retransmits into a CLOSED client.
    r = simulate("lost-final-ack", time_wait=0.0, final_ack_losses=1)
    rst = [s for s in r.trace if s.has("RST")]
    assert len(rst) == 1 and rst[0].src == "client"


def test_rfc1337_does_not_change_a_clean_close():
    assert simulate("four-way-close", rfc1337=True).outcome == "clean-close"


@pytest.mark.parametrize(
    "isn,expected",
    [
        ("fixed", "old-duplicate-accepted"),
        ("clock", "old-duplicate-rejected"),
        ("random", "old-duplicate-rejected"),
    ],
)
def test_old_duplicate_without_time_wait_depends_on_the_isn_policy(isn, expected):
    r = simulate("old-duplicate", isn=isn, time_wait_msl=0, seed=3)
    assert r.outcome == expected
    if expected.endswith("rejected"):
        assert r.defence == "sequence-window"
    dup = [s for s in r.trace if s.note == "old duplicate"]
    assert len(dup) == 1 and dup[0].flags == "PSH|ACK"


def test_two_msl_of_time_wait_rejects_an_old_duplicate_even_with_fixed_isns():
    r = simulate("old-duplicate", isn="fixed", time_wait_msl=2)
    assert (r.outcome, r.defence) == ("old-duplicate-rejected", "time-wait")


def test_reconnect_delay_can_protect_when_time_wait_is_short():
    r = simulate("old-duplicate", isn="fixed", time_wait_msl=0, reconnect_delay=31.0)
    assert (r.outcome, r.defence) == ("old-duplicate-rejected", "no-connection")


def test_paws_rejects_the_old_duplicate():
    r = simulate("old-duplicate", isn="fixed", time_wait_msl=0, timestamps=True)
    assert (r.outcome, r.defence) == ("old-duplicate-rejected", "paws")
    assert all(s.tsval is not None for s in r.trace if s.note != "old duplicate")


def test_a_fast_transfer_outruns_the_isn_clock():
    # The new ISN advanced by rate x elapsed time; an old segment that far into connection 1
    # lands inside the new window.
    base = simulate("old-duplicate", isn="clock", time_wait_msl=0, hold=30.0, old_offset=0)
    assert base.outcome == "old-duplicate-rejected"
    elapsed = 0.006  # connect of incarnation 2 minus connect of incarnation 1
    offset = int(elapsed * 250_000)
    r = simulate("old-duplicate", isn="clock", time_wait_msl=0, hold=30.0, old_offset=offset)
    assert r.outcome == "old-duplicate-accepted"


def test_one_msl_of_time_wait_lets_the_provoked_reset_end_the_new_incarnation():
    # The old request arrives just inside a one-MSL TIME_WAIT; the server has no
    # connection and resets it; that reset reaches the idle new incarnation an MSL later.
    r = simulate("provoked-reset", isn="fixed", time_wait_msl=1, hold=30.0, answer_hold=30.0)
    assert (r.outcome, r.defence) == ("late-reset-accepted", None)
    late = [s for s in r.trace if s.note == "old duplicate"]
    assert [(s.src, s.flags) for s in late] == [("client", "PSH|ACK"), ("server", "RST")]
    assert late[1].t > 30.0 * 2 - 0.01  # two MSLs after the request left
    assert r.final_states == {"client": "CLOSED", "server": "ESTABLISHED"}


def test_two_msl_of_time_wait_discards_the_provoked_reset():
    r = simulate("provoked-reset", isn="fixed", time_wait_msl=2, hold=30.0, answer_hold=30.0)
    assert (r.outcome, r.defence) == ("late-reset-rejected", "time-wait")
    assert r.final_states == {"client": "ESTABLISHED", "server": "ESTABLISHED"}


def test_the_old_request_itself_reaches_a_new_incarnation_before_it_can_provoke_a_reset():
    r = simulate("provoked-reset", isn="fixed", time_wait_msl=0.5, hold=20.0)
    assert r.outcome == "old-duplicate-accepted"
    assert not [s for s in r.trace if s.flags == "RST"]


@pytest.mark.parametrize("isn,defence", [("clock", "sequence-window"), ("random", "sequence-window")])
def test_a_new_isn_puts_the_provoked_reset_outside_the_window(isn, defence):
    r = simulate("provoked-reset", isn=isn, time_wait_msl=1, hold=30.0, answer_hold=30.0, seed=4)
    assert (r.outcome, r.defence) == ("late-reset-rejected", defence)
    assert r.final_states["client"] == "ESTABLISHED"


def test_a_reset_in_the_window_but_not_next_draws_a_challenge_ack():
    r = simulate(
        "provoked-reset", isn="fixed", time_wait_msl=1, hold=30.0, answer_hold=30.0, server_isns=(1000, 990)
    )
    assert (r.outcome, r.defence) == ("late-reset-rejected", "rst-check")
    after = [s for s in r.trace if s.t > 59.0]
    assert [(s.src, s.flags) for s in after] == [("server", "RST"), ("client", "ACK")]


def test_a_reset_before_the_handshake_completes_is_ignored():
    # TIME_WAIT ends at 20.006 s; the SYN,ACK arrives 2 ms later; the reset comes between.
    r = simulate("provoked-reset", isn="fixed", time_wait=20.0, hold=10.0, answer_hold=20.0071 - 10.002)
    assert (r.outcome, r.defence) == ("late-reset-rejected", "syn-sent")
    assert r.final_states["client"] == "ESTABLISHED"


def test_runs_are_deterministic_for_a_seed():
    a = simulate("four-way-close", loss=0.3, jitter=0.01, seed=7)
    b = simulate("four-way-close", loss=0.3, jitter=0.01, seed=7)
    c = simulate("four-way-close", loss=0.3, jitter=0.01, seed=8)
    assert a.trace.to_dicts() == b.trace.to_dicts()
    assert a.to_json() == b.to_json()
    assert [s.t for s in a.trace] != [s.t for s in c.trace]


def test_random_isns_differ_between_seeds_and_fixed_isns_do_not():
    def abs_seq(r):
        return r.trace[0].seq_abs

    assert abs_seq(simulate("four-way-close", isn="random", seed=1)) != abs_seq(
        simulate("four-way-close", isn="random", seed=2)
    )
    assert (
        abs_seq(simulate("four-way-close", isn="fixed", seed=1))
        == abs_seq(simulate("four-way-close", isn="fixed", seed=2))
        == 1000
    )


def test_every_outcome_is_named_and_json_round_trips():
    r = simulate("lost-final-ack", time_wait_msl=0)
    data = json.loads(r.to_json())
    assert data["outcome"] == "peer-reset" and data["outcome"] in OUTCOMES
    assert data["end_states"] == {"client": "CLOSED", "server": "CLOSED"}
    assert len(data["trace"]) == len(r.trace)


def test_lossy_runs_end_in_a_named_outcome():
    seen = set()
    for seed in range(30):
        r = simulate("four-way-close", loss=0.3, seed=seed, max_retries=3)
        assert r.outcome in OUTCOMES
        seen.add(r.outcome)
    assert "clean-close" in seen


@pytest.mark.parametrize(
    "params,needle",
    [
        (dict(loss=1.5), "loss: must be between 0 and 1, got 1.5"),
        (dict(msl=0), "msl"),
        (dict(time_wait_msl=-1), "time_wait_msl"),
        (dict(closer="nobody"), "closer: must be one of"),
        (dict(isn="lucky"), "isn: must be one of"),
        (dict(delay=31.0), "delay"),
        (dict(drop=("client:ACK:zero",)), "drop"),
        (dict(hold=5.0), "hold: scenario 'four-way-close' does not use"),
        (dict(answer_hold=5.0), "answer_hold: scenario 'four-way-close' does not use"),
        (dict(colour="red"), "colour: not a simulation parameter"),
        (dict(merged="yes"), "merged: must be True or False, got 'yes'"),
        (dict(request_bytes=2.5), "request_bytes: must be between 0 and 1000000000, got 2.5"),
        (dict(seed=True), "seed: must be between"),
    ],
)
def test_invalid_parameters_are_named(params, needle):
    with pytest.raises(ValueError, match=needle.replace("(", r"\(")):
        simulate("four-way-close", **params)


def test_unknown_scenario():
    with pytest.raises(ValueError, match="scenario: must be one of"):
        simulate("nope")
    assert "old-duplicate" in list_scenarios()
    assert "provoked-reset" in list_scenarios()


@pytest.mark.parametrize(
    "params,needle",
    [
        (dict(answer_hold=31.0), r"answer_hold: must be in \(0, MSL=30.0\] seconds, got 31.0"),
        (dict(answer_hold=0.0), "answer_hold: must be in"),
        (dict(hold=-1.0), "hold: must be in"),
        (dict(request_bytes=0), "request_bytes: must be >= 1"),
    ],
)
def test_provoked_reset_parameters_are_checked(params, needle):
    with pytest.raises(ValueError, match=needle):
        simulate("provoked-reset", **params)


def test_scenarios_and_experiments_share_one_param_type():
    from timewait.experiments.base import TIMEOUT, Param
    from timewait.model.params import Param as ModelParam

    assert Param is ModelParam and isinstance(TIMEOUT, Param)
    assert all(isinstance(p, Param) and p.name == name for name, p in PARAMS.items())
    # A whole number given as a float is the int it equals; a float parameter's value a float.
    r = simulate("four-way-close", request_bytes=100.0, time_wait_msl=1)
    assert type(r.params["request_bytes"]) is int and type(r.params["time_wait_msl"]) is float


def test_scenarios_are_registered_as_experiments_are():
    scenario = get("lost-fin")
    assert scenario.run is lost_fin
    assert "fin_losses" in scenario.params and scenario.summary.startswith("The closer's first FIN")
    with pytest.raises(ValueError, match="scenario: must be one of four-way-close, "):
        get("no-such-scenario")
    with pytest.raises(ValueError, match="fin_lossez"):
        register(Scenario("bad", lost_fin, params=("msl", "fin_lossez")))
    with pytest.raises(ValueError, match="closer"):
        register(Scenario("bad", lost_fin, params=("msl",), defaults={"closer": "both"}))
    assert "bad" not in REGISTRY
