"""time-wait-reopen: a SYN that meets the server's TIME_WAIT reopens the 4-tuple when its
sequence number is beyond the old connection's or its timestamp is newer, over IPv4 and IPv6."""

import pytest

from timewait.experiments import get, run
from timewait.experiments.time_wait_reopen import CLOCK_ISN, TW_ACK, TW_ISN, _rounded

# (timestamps, outrun) -> (SYN beyond the old rcv_nxt, timestamp newer,
#                          the server's answer to the first SYN, SYNs sent)
EXPECTED = {
    (True, True): (False, True, "SYN|ACK", 1),  # the timestamp alone admits it
    (True, False): (True, True, "SYN|ACK", 1),
    (False, True): (False, None, TW_ACK, 2),  # neither: the TIME_WAIT socket answers
    (False, False): (True, None, "SYN|ACK", 1),  # the ISN clock alone admits it
}
KEYS = ("timestamps", "outrun")
FAMILIES = (4, 6)
ADDRESS = {4: "127.0.0.1", 6: "::1"}


def test_every_recorded_variant_has_an_expected_outcome():
    exp = get("time-wait-reopen")
    assert {tuple(exp.check(v)[k] for k in KEYS) for v in exp.variants} == set(EXPECTED)


ADMITTED = [k for k, (_, _, answer, _) in EXPECTED.items() if answer == "SYN|ACK"]
REFUSED = [k for k, (_, _, answer, _) in EXPECTED.items() if answer == TW_ACK]


def _id(variant) -> str:
    timestamps, outrun = variant
    return f"ts-{timestamps}-outrun-{outrun}"


def _run_id(key) -> str:
    variant, family = key
    return f"{_id(variant)}-ipv{family}"


@pytest.fixture(scope="module")
def runs(full_tier):
    return {
        (variant, family): run("time-wait-reopen", family=family, **dict(zip(KEYS, variant, strict=True)))
        for variant in EXPECTED
        for family in FAMILIES
    }


@pytest.fixture(params=[(v, f) for v in EXPECTED for f in FAMILIES], ids=_run_id)
def result(request, runs):
    return runs[request.param]


@pytest.mark.live
def test_the_run_stays_on_its_family(result):
    address = ADDRESS[result.params["family"]]
    assert {s.saddr for s in result.trace} | {s.daddr for s in result.trace} == {address}


@pytest.mark.live
def test_the_server_holds_time_wait_and_the_client_reconnects(result):
    assert (result.server_state, result.client_state) == ("TIME_WAIT", "CLOSED")
    assert result.connected and result.connect_error is None
    assert result.new_states == {"client": "ESTABLISHED", "server": "ESTABLISHED"}
    assert result.time_wait_after == "gone"
    assert result.counters.get("TW") == 1


@pytest.mark.live
def test_the_syn_is_admitted_by_its_sequence_number_or_its_timestamp(result):
    beyond, newer, answer, syns = EXPECTED[tuple(result.params[k] for k in KEYS)]
    assert result.syn_isn_beyond_old is beyond
    assert result.syn_timestamp_newer is newer
    assert result.first_syn_answer == answer
    assert result.syn_transmissions == syns


@pytest.mark.live
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("variant", ADMITTED, ids=_id)
def test_an_admitted_syn_gets_the_isn_time_wait_chose_at_once(runs, variant, family):
    result = runs[variant, family]
    assert result.first_syn_answer == "SYN|ACK"
    assert result.connected_after == "at once" and result.client_reply == "ACK"
    assert result.server_isn_from == TW_ISN
    assert "TCPSynRetrans" not in result.counters and "Tcp:OutRsts" not in result.counters


@pytest.mark.live
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("variant", REFUSED, ids=_id)
def test_a_refused_syn_draws_a_reset_and_a_quick_retransmission(runs, variant, family):
    result = runs[variant, family]
    assert result.first_syn_answer == TW_ACK
    assert result.client_reply == "RST"
    # the TIME_WAIT socket is gone, so the listener answers with a clock ISN
    assert result.server_isn_from == CLOCK_ISN
    assert result.connected_after.startswith("after 1 SYN retransmission, well before")
    assert result.connect_seconds < 0.5
    assert result.counters["Tcp:OutRsts"] == 1 and result.counters["TCPSynRetrans"] == 1
    flags = [s.flags for s in result.trace]
    assert flags[7:11] == ["SYN", "ACK", "RST", "SYN"]
    assert [s.note for s in result.trace][8] == "from TIME_WAIT"


@pytest.mark.live
def test_the_trace_holds_both_incarnations_without_the_bulk(result):
    flags = [s.flags for s in result.trace]
    assert flags[:7] == ["SYN", "SYN|ACK", "ACK", "FIN|ACK", "ACK", "FIN|ACK", "ACK"]
    assert flags[-3:] == ["SYN", "SYN|ACK", "ACK"]
    assert all(s.length == 0 for s in result.trace)


def test_connect_times_are_put_in_stable_words():
    assert _rounded(0.001, 1) == "at once"
    assert _rounded(0.012, 2) == ("after 1 SYN retransmission, well before the 1 s retransmission timeout")
    assert _rounded(1.02, 2) == "after 1 SYN retransmission (about 1 s)"
    assert _rounded(3.1, 3) == "after 2 SYN retransmissions (about 3 s)"


@pytest.mark.parametrize(
    "bad,name",
    [
        ({"timestamps": 1}, "timestamps"),
        ({"outrun": "yes"}, "outrun"),
        ({"port": 40000}, "port"),
        ({"family": 5}, "family"),
    ],
)
def test_bad_options_are_rejected_by_name(bad, name):
    with pytest.raises(ValueError, match=f"^{name}: "):
        run("time-wait-reopen", **bad)
