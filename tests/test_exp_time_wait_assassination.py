"""time-wait-assassination: an in-window RST kills TIME_WAIT unless tcp_rfc1337=1, over IPv4
and over IPv6."""

import pytest

from timewait.experiments import run

ADDRESS = {4: "127.0.0.1", 6: "::1"}


def _ran_over(r, family: int) -> None:
    """Every segment of the trace, crafted ones included, and the socket table are of ``family``."""
    assert {s.saddr for s in r.trace} | {s.daddr for s in r.trace} == {ADDRESS[family]}
    other = ADDRESS[10 - family]
    assert f"{ADDRESS[family]}:5000" in r.socket_table and other not in r.socket_table


@pytest.mark.live
@pytest.mark.parametrize("family", [4, 6])
@pytest.mark.parametrize("rfc1337", [0, 1])
def test_rfc1337_decides_whether_time_wait_survives_the_reset(full_tier, rfc1337, family):
    r = run("time-wait-assassination", rfc1337=rfc1337, family=family)
    _ran_over(r, family)
    assert r.trace[-1].flags == "RST" and r.trace[-1].note == "crafted"
    assert r.reply_to_rst is None  # TIME_WAIT answers a RST with nothing, either way
    if rfc1337:
        assert r.time_wait_survived
        assert r.reconnect == "EADDRINUSE"
        assert r.time_wait_timer_s > 50
    else:
        assert not r.time_wait_survived
        assert r.reconnect == "ok"
        assert r.reusable_after_s == 0.0
        assert "TIME_WAIT" not in r.socket_table


@pytest.mark.live
@pytest.mark.parametrize("family", [4, 6])
@pytest.mark.parametrize("rfc1337", [0, 1])
def test_a_forgetful_peer_answers_time_waits_ack_with_the_reset_that_ends_it(full_tier, rfc1337, family):
    r = run("time-wait-assassination", rfc1337=rfc1337, trigger="retransmitted-fin", family=family)
    _ran_over(r, family)
    segments = list(r.trace)
    crafted = [s for s in segments if s.note == "crafted"]
    assert [s.flags for s in crafted] == ["FIN|ACK"]  # the copy of the server's FIN
    after = segments[segments.index(crafted[0]) + 1 :]
    assert [(s.src, s.flags) for s in after] == [("client", "ACK"), ("server", "RST")]
    ack, rst = after
    assert rst.seq_abs == ack.ack_abs  # the reset's sequence number is the ACK's ack number
    assert (r.reply_to_fin, r.peer_reply, r.reply_to_rst) == ("ACK", "RST", None)
    if rfc1337:
        assert r.time_wait_survived and r.reconnect == "EADDRINUSE"
        assert r.time_wait_timer_s > 50
    else:
        assert not r.time_wait_survived and "TIME_WAIT" not in r.socket_table
        assert r.reconnect == "ok" and r.reusable_after_s == 0.0


@pytest.mark.parametrize(
    "bad",
    [
        {"rfc1337": 2},
        {"rfc1337": -1},
        {"rfc1337": True},
        {"rfc1337": "1"},
        {"trigger": "fin"},
        {"trigger": 1},
        {"family": 5},
        {"family": "6"},
    ],
)
def test_bad_options_are_rejected(bad):
    with pytest.raises(ValueError):
        run("time-wait-assassination", **bad)
