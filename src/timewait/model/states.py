"""TCP connection states and the transition table, as data.

The table below is RFC 9293's state diagram (section 3.3.2, Figure 5) written out row by
row, so that it can be checked against the RFC at a glance. Each row reads::

    (state, event): (next state, actions)

Events are what the diagram writes on its arrows ("rcv FIN", "close", "timeout=2MSL").
Whether a segment is acceptable at all (sequence window, PAWS, RFC 5961 checks) is decided
before the table is consulted, in :mod:`timewait.model.endpoint`; the table only says where
an acceptable event leads.
"""

from __future__ import annotations

# --- states (RFC 9293 spelling) --------------------------------------------------------
CLOSED = "CLOSED"
LISTEN = "LISTEN"
SYN_SENT = "SYN_SENT"
SYN_RECEIVED = "SYN_RECEIVED"
ESTABLISHED = "ESTABLISHED"
FIN_WAIT_1 = "FIN_WAIT_1"
FIN_WAIT_2 = "FIN_WAIT_2"
CLOSING = "CLOSING"
TIME_WAIT = "TIME_WAIT"
CLOSE_WAIT = "CLOSE_WAIT"
LAST_ACK = "LAST_ACK"

STATES = (
    CLOSED,
    LISTEN,
    SYN_SENT,
    SYN_RECEIVED,
    ESTABLISHED,
    FIN_WAIT_1,
    FIN_WAIT_2,
    CLOSING,
    TIME_WAIT,
    CLOSE_WAIT,
    LAST_ACK,
)

# States in which both sides' sequence numbers are known (RFC 9293 "synchronized").
SYNCHRONIZED = frozenset(
    {SYN_RECEIVED, ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, CLOSING, TIME_WAIT, CLOSE_WAIT, LAST_ACK}
)
# States in which our FIN has been sent and not yet acknowledged.
FIN_OUTSTANDING = frozenset({FIN_WAIT_1, CLOSING, LAST_ACK})

# --- events ------------------------------------------------------------------------------
# from the application
APP_LISTEN = "listen"
APP_CONNECT = "connect"
APP_CLOSE = "close"
# from the peer (segments that passed the acceptability checks)
RCV_SYN = "rcv SYN"
RCV_SYN_ACK = "rcv SYN,ACK"
RCV_ACK_OF_SYN = "rcv ACK of SYN"
RCV_FIN = "rcv FIN"
RCV_ACK_OF_FIN = "rcv ACK of FIN"
RCV_FIN_ACK_OF_FIN = "rcv FIN + ACK of FIN"  # FIN_WAIT_1 straight to TIME_WAIT
RCV_RST = "rcv RST"
RCV_NEW_SYN = "rcv SYN of a new incarnation"  # RFC 1122 4.2.2.13 / RFC 6191
# from timers
TIMEOUT_2MSL = "timeout=2MSL"
TIMEOUT_FIN_WAIT_2 = "timeout FIN_WAIT_2"  # Linux tcp_fin_timeout for orphaned sockets
GIVE_UP = "retransmissions exhausted"

# --- actions -----------------------------------------------------------------------------
SEND_SYN = "send SYN"
SEND_SYN_ACK = "send SYN,ACK"
SEND_ACK = "send ACK"
SEND_FIN = "send FIN"
START_TIME_WAIT = "start 2MSL timer"
DELETE_TCB = "delete TCB"

# --- the table ---------------------------------------------------------------------------
TRANSITIONS = {
    # opening: what a new incarnation needs
    (CLOSED, APP_LISTEN): (LISTEN, ()),
    (CLOSED, APP_CONNECT): (SYN_SENT, (SEND_SYN,)),
    (LISTEN, RCV_SYN): (SYN_RECEIVED, (SEND_SYN_ACK,)),
    (LISTEN, APP_CLOSE): (CLOSED, (DELETE_TCB,)),
    (SYN_SENT, RCV_SYN_ACK): (ESTABLISHED, (SEND_ACK,)),
    (SYN_SENT, RCV_SYN): (SYN_RECEIVED, (SEND_SYN_ACK,)),  # simultaneous open
    (SYN_SENT, APP_CLOSE): (CLOSED, (DELETE_TCB,)),
    (SYN_SENT, RCV_RST): (CLOSED, (DELETE_TCB,)),  # connection refused
    (SYN_SENT, GIVE_UP): (CLOSED, (DELETE_TCB,)),
    (SYN_RECEIVED, RCV_ACK_OF_SYN): (ESTABLISHED, ()),
    (SYN_RECEIVED, APP_CLOSE): (FIN_WAIT_1, (SEND_FIN,)),
    (SYN_RECEIVED, RCV_RST): (CLOSED, (DELETE_TCB,)),
    (SYN_RECEIVED, GIVE_UP): (CLOSED, (DELETE_TCB,)),
    # active close
    (ESTABLISHED, APP_CLOSE): (FIN_WAIT_1, (SEND_FIN,)),
    (FIN_WAIT_1, RCV_ACK_OF_FIN): (FIN_WAIT_2, ()),
    (FIN_WAIT_1, RCV_FIN): (CLOSING, (SEND_ACK,)),  # simultaneous close
    (FIN_WAIT_1, RCV_FIN_ACK_OF_FIN): (TIME_WAIT, (SEND_ACK, START_TIME_WAIT)),
    (FIN_WAIT_2, RCV_FIN): (TIME_WAIT, (SEND_ACK, START_TIME_WAIT)),
    (CLOSING, RCV_ACK_OF_FIN): (TIME_WAIT, (START_TIME_WAIT,)),
    (TIME_WAIT, RCV_FIN): (TIME_WAIT, (SEND_ACK, START_TIME_WAIT)),  # restart
    (TIME_WAIT, TIMEOUT_2MSL): (CLOSED, (DELETE_TCB,)),
    (TIME_WAIT, RCV_NEW_SYN): (SYN_RECEIVED, (SEND_SYN_ACK,)),
    # passive close
    (ESTABLISHED, RCV_FIN): (CLOSE_WAIT, (SEND_ACK,)),
    (CLOSE_WAIT, APP_CLOSE): (LAST_ACK, (SEND_FIN,)),
    (LAST_ACK, RCV_ACK_OF_FIN): (CLOSED, (DELETE_TCB,)),
    # resets and give-ups in synchronized states
    (ESTABLISHED, RCV_RST): (CLOSED, (DELETE_TCB,)),
    (FIN_WAIT_1, RCV_RST): (CLOSED, (DELETE_TCB,)),
    (FIN_WAIT_2, RCV_RST): (CLOSED, (DELETE_TCB,)),
    (CLOSING, RCV_RST): (CLOSED, (DELETE_TCB,)),
    (TIME_WAIT, RCV_RST): (CLOSED, (DELETE_TCB,)),  # unless RFC 1337
    (CLOSE_WAIT, RCV_RST): (CLOSED, (DELETE_TCB,)),
    (LAST_ACK, RCV_RST): (CLOSED, (DELETE_TCB,)),
    (FIN_WAIT_1, GIVE_UP): (CLOSED, (DELETE_TCB,)),
    (CLOSING, GIVE_UP): (CLOSED, (DELETE_TCB,)),
    (LAST_ACK, GIVE_UP): (CLOSED, (DELETE_TCB,)),
    (ESTABLISHED, GIVE_UP): (CLOSED, (DELETE_TCB,)),
    (CLOSE_WAIT, GIVE_UP): (CLOSED, (DELETE_TCB,)),
    (FIN_WAIT_2, TIMEOUT_FIN_WAIT_2): (CLOSED, (DELETE_TCB,)),
}


class TransitionError(Exception):
    """An event that the state it arrived in has no transition for."""

    def __init__(self, state: str, event: str, who: str = ""):
        self.state, self.event, self.who = state, event, who
        where = f"{who}: " if who else ""
        allowed = sorted(e for (s, e) in TRANSITIONS if s == state)
        super().__init__(
            f"{where}event {event!r} is not allowed in state {state}; "
            f"allowed there: {', '.join(allowed) or 'none'}"
        )


def transition(state: str, event: str, who: str = "") -> tuple:
    """``(next_state, actions)`` for ``event`` in ``state``; :class:`TransitionError` if the
    table has no such row."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise TransitionError(state, event, who) from None


def table_text() -> str:
    """The transition table as aligned text, one row per arrow of the RFC diagram."""
    rows = [f"{'state':<13} {'event':<28} {'next':<13} actions"]
    for (state, event), (nxt, actions) in TRANSITIONS.items():
        rows.append(f"{state:<13} {event:<28} {nxt:<13} {', '.join(actions) or '-'}")
    return "\n".join(rows)
