"""abortive-close: a RST instead of a FIN, no TIME_WAIT, and the peer sees an error."""

import pytest

from timewait.experiments import run

pytestmark = pytest.mark.live


@pytest.fixture(scope="module", params=["linger-zero", "unread-data"])
def result(request, full_tier):
    return run("abortive-close", mode=request.param)


def test_close_sends_a_reset_and_leaves_no_time_wait(result):
    assert result.close_segment == "RST|ACK"
    assert not result.time_wait_created
    assert result.socket_table == "(no sockets left)"


def test_the_peer_reads_what_had_arrived_loses_what_was_in_flight_then_errs(result):
    assert result.peer_received == len(b"last words\n")
    assert result.peer_lost_data and result.lost_bytes == len(b"postscript, still in flight\n")
    assert result.peer_error == "ECONNRESET"
    assert result.peer_send_error == "EPIPE"


def test_the_reset_past_the_expected_sequence_is_challenged(result):
    assert result.counters.get("TCPChallengeACK") == 1
    assert [s.flags for s in result.trace][-3:] == ["RST|ACK", "ACK", "RST"]


def test_each_mode_has_its_own_counter(result):
    if result.params["mode"] == "linger-zero":
        assert result.counters.get("TCPAbortOnData") == 1
        assert result.discarded_unread == 0
    else:
        assert result.counters.get("TCPAbortOnClose") == 1
        assert result.discarded_unread == len(b"reply the client never reads\n")


@pytest.mark.parametrize("bad", [{"mode": "linger"}, {"mode": ""}, {"mode": 0}, {"linger_zero": True}])
def test_bad_options_are_rejected(bad):
    with pytest.raises(ValueError):
        run("abortive-close", **bad)
