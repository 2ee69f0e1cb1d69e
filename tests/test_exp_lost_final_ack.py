"""lost-final-ack: TIME_WAIT answers the retransmitted FIN; without it a RST does."""
import pytest

from timewait.experiments import run

pytestmark = pytest.mark.live


@pytest.fixture(scope="module", params=[True, False], ids=["time-wait", "no-time-wait"])
def result(request, full_tier):
    return run("lost-final-ack", time_wait=request.param)


def test_the_passive_side_retransmits_its_fin_once_after_at_least_the_minimum_rto(result):
    assert result.fin_retransmissions == 1
    assert result.rto_at_least_200ms
    assert result.trace[-3].note == "dropped" and result.trace[-3].flags == "ACK"


def test_with_time_wait_the_closer_acks_again_and_the_peer_closes_cleanly(result):
    if not result.params["time_wait"]:
        pytest.skip("covered by the no-time-wait case")
    assert result.closer_state == "TIME_WAIT"
    assert result.answer_to_retransmitted_fin == "ACK"
    assert not result.rst_seen
    assert result.peer_error is None
    assert result.peer_final_state == "CLOSED"


def test_without_time_wait_a_reset_gives_the_peer_econnreset(result):
    if result.params["time_wait"]:
        pytest.skip("covered by the time-wait case")
    assert result.closer_state == "CLOSED"
    assert result.answer_to_retransmitted_fin == "RST"
    assert result.rst_seen
    assert result.peer_error == "ECONNRESET"
    assert result.peer_final_state == "CLOSED"
    assert result.counters.get("TCPTimeWaitOverflow") == 1


def test_summary_has_no_timings(result):
    assert "fin_gaps_s" not in result.summary()
    assert result.to_json()["fin_gaps_s"]


@pytest.mark.parametrize("bad", [{"time_wait": 1}, {"time_wait": "no"}, {"timewait": True}])
def test_bad_options_are_rejected(bad):
    with pytest.raises(ValueError):
        run("lost-final-ack", **bad)
