"""timeout-close: an application's timeout leaves the connection alone; TCP's aborts it to
CLOSED, with no TIME_WAIT and no FIN or RST on the wire."""

import pytest

from timewait.experiments import run


@pytest.fixture(scope="module")
def recv_timeout(full_tier):
    return run("timeout-close", kind="recv-timeout")


@pytest.fixture(scope="module")
def user_timeout(full_tier):
    return run("timeout-close", kind="user-timeout")


@pytest.fixture(scope="module")
def close_timeout(full_tier):
    return run("timeout-close", kind="close-timeout")


@pytest.mark.live
def test_a_receive_timeout_leaves_the_connection_established(recv_timeout):
    r = recv_timeout
    assert r.error == "EAGAIN"
    assert 0.28 <= r.waited_s < 0.6
    assert r.application_saw == "recv() failed with EAGAIN after about 0.3 s"
    assert r.client_segments_while_waiting == 0  # TCP sent nothing: it is the application's timer
    assert r.state_after_timeout == r.peer_state_after_timeout == "ESTABLISHED"
    assert r.kernel_counters["TCPAbortOnTimeout"] == 0
    assert r.afterwards.startswith("the server sent 11 bytes and the client read 11")


@pytest.mark.live
def test_after_a_receive_timeout_a_normal_close_still_leaves_time_wait(recv_timeout):
    r = recv_timeout
    assert r.end_states == {"client": "TIME_WAIT", "server": "CLOSED"}
    assert r.time_wait == "client, 60 s timer"
    assert r.kernel_counters["TW"] == 1
    assert [f for _, f in r.trace.flag_sequence()][-3:] == ["FIN|ACK", "FIN|ACK", "ACK"]


@pytest.mark.live
def test_a_user_timeout_aborts_to_closed_without_time_wait(user_timeout):
    r = user_timeout
    assert r.error == "ETIMEDOUT"
    assert r.state_after_timeout == "CLOSED"  # gone from the socket table at once
    assert r.socket_table.count(":40000") == 1  # only as the server's peer: no client row
    assert r.time_wait == "none"
    assert r.kernel_counters == {"TCPAbortOnTimeout": 1, "TCPLossProbes": 1, "TW": 0}


@pytest.mark.live
def test_the_abort_sends_neither_fin_nor_rst_and_the_peer_does_not_know(user_timeout):
    r = user_timeout
    assert r.wire_while_waiting == "the request, sent 4 times; no FIN, no RST"
    assert r.client_fins_while_waiting == 0
    assert r.peer_state_after_timeout == "ESTABLISHED"
    # The only RST is the forgotten client's answer to the server's later reply.
    assert r.client_rsts == 1 and r.trace.flag_sequence()[-1] == ("client", "RST")
    assert r.afterwards.endswith("the client answered RST; the server's next recv() failed with ECONNRESET")


@pytest.mark.live
def test_the_user_timeout_runs_from_the_first_timeout_retransmission(user_timeout):
    r = user_timeout
    # the request, a tail loss probe one RTO later, then timeout retransmissions
    assert 0.95 <= r.after_first_timeout_retransmission_s < 1.3
    assert 1.3 <= r.waited_s < 1.8  # so the application waited more than the 1 s it set
    assert r.gave_up == "about 1 s after the first timeout retransmission"


@pytest.mark.live
def test_an_unacknowledged_fin_gives_up_from_fin_wait_1_to_closed(close_timeout):
    r = close_timeout
    assert r.application_saw == "close() returned at once"
    assert r.state_after_timeout == "FIN_WAIT_1 -> CLOSED"  # never FIN_WAIT_2, never TIME_WAIT
    assert r.wire_while_waiting == "the FIN, sent 4 times; no RST"
    assert 0.95 <= r.after_first_timeout_retransmission_s < 1.3
    assert r.time_wait == "none"
    assert r.kernel_counters == {"TCPAbortOnTimeout": 1, "TCPLossProbes": 1, "TW": 0}
    assert r.peer_state_after_timeout == "CLOSE_WAIT"  # the FIN arrived; only its ACK was lost
    assert r.afterwards == "the server closed; its FIN was answered with RST"


@pytest.mark.parametrize("bad", ["send-timeout", "", None, 1, True])
def test_bad_kinds_are_rejected_naming_the_option_and_its_values(bad):
    with pytest.raises(ValueError, match="kind: must be one of recv-timeout, user-timeout, close-timeout"):
        run("timeout-close", kind=bad)
