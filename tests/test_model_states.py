"""The transition table is RFC 9293's diagram, and illegal events are named errors."""

import pytest

from timewait.model import states as S

# The arrows of RFC 9293 Figure 5 (plus CLOSING/TIME_WAIT details of section 3.10.7).
RFC_ARROWS = [
    (S.CLOSED, S.APP_LISTEN, S.LISTEN),
    (S.CLOSED, S.APP_CONNECT, S.SYN_SENT),
    (S.LISTEN, S.RCV_SYN, S.SYN_RECEIVED),
    (S.SYN_SENT, S.RCV_SYN, S.SYN_RECEIVED),
    (S.SYN_SENT, S.RCV_SYN_ACK, S.ESTABLISHED),
    (S.SYN_RECEIVED, S.RCV_ACK_OF_SYN, S.ESTABLISHED),
    (S.SYN_RECEIVED, S.APP_CLOSE, S.FIN_WAIT_1),
    (S.ESTABLISHED, S.APP_CLOSE, S.FIN_WAIT_1),
    (S.ESTABLISHED, S.RCV_FIN, S.CLOSE_WAIT),
    (S.FIN_WAIT_1, S.RCV_ACK_OF_FIN, S.FIN_WAIT_2),
    (S.FIN_WAIT_1, S.RCV_FIN, S.CLOSING),
    (S.FIN_WAIT_2, S.RCV_FIN, S.TIME_WAIT),
    (S.CLOSING, S.RCV_ACK_OF_FIN, S.TIME_WAIT),
    (S.TIME_WAIT, S.TIMEOUT_2MSL, S.CLOSED),
    (S.CLOSE_WAIT, S.APP_CLOSE, S.LAST_ACK),
    (S.LAST_ACK, S.RCV_ACK_OF_FIN, S.CLOSED),
]


@pytest.mark.parametrize("state,event,nxt", RFC_ARROWS)
def test_every_arrow_of_the_rfc_diagram_is_in_the_table(state, event, nxt):
    assert S.transition(state, event)[0] == nxt


def test_entering_time_wait_always_starts_the_2msl_timer():
    for (state, event), (nxt, actions) in S.TRANSITIONS.items():
        if nxt == S.TIME_WAIT:
            assert S.START_TIME_WAIT in actions, (state, event)


def test_every_state_is_reachable_and_known():
    targets = {nxt for nxt, _ in S.TRANSITIONS.values()}
    assert set(S.STATES) - {S.CLOSED} <= targets
    assert {s for s, _ in S.TRANSITIONS} <= set(S.STATES)


def test_an_illegal_event_names_the_event_and_the_state():
    with pytest.raises(S.TransitionError) as info:
        S.transition(S.TIME_WAIT, S.APP_CLOSE, who="client")
    text = str(info.value)
    assert "close" in text and "TIME_WAIT" in text and "client" in text


def test_table_text_has_one_line_per_row():
    assert len(S.table_text().splitlines()) == len(S.TRANSITIONS) + 1
