"""time-wait-reopen: the server closes first, and the client reconnects on the same 4-tuple.

The first connection (client port 40000 -> server port 5000) is closed by the server, so
the server's socket holds TIME_WAIT, as an HTTP server's does when it closes first. At once
a new client socket binds port 40000 (SO_REUSEADDR; the client's old socket is CLOSED) and
connects to port 5000: its SYN reaches the server's TIME_WAIT socket.
``tcp_timewait_state_process()`` (net/ipv4/tcp_minisocks.c) lets such a SYN reopen the
4-tuple if its sequence number is after the old connection's rcv_nxt, or if it carries a
timestamp newer than the last one the TIME_WAIT socket saw. Otherwise the TIME_WAIT socket
answers with an ACK of the old connection.

``outrun=True``: the old connection's client first sends 32 MiB, faster than the 64 ns ISN
clock (15.6 MB/s), so the new SYN's ISN (same 4-tuple hash, clock a little further on) lies
behind the old connection's rcv_nxt at the server. With ``timestamps`` on, the timestamp
alone can then admit the SYN. Linux's TCP timestamps count milliseconds, and a SYN sent in
the same millisecond as the client's FIN carries the same value, which is not newer: the
run waits ``TS_TICK`` seconds before reconnecting, so that the clock has ticked.
``family=6`` runs it over IPv6, on ``::1``.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import NamedTuple, Optional

from ..capture import TcpView, to_trace
from ..faults import Match
from ..model.seq import seq_diff, seq_gt
from ..observe import counter_delta
from .base import Experiment, ExperimentResult, Param, register, shown
from .common import errno_name, unacked, views_outside

SERVER_PORT = 5000
CLIENT_PORT = 40000
BULK = 32 << 20  # outruns the ISN clock (15.6 MB/s) by about two seconds
TS_TICK = 0.005  # > 1 ms: the client's timestamp clock moves on past its FIN's
COUNTERS = (
    "TW",
    "TWRecycled",
    "TWKilled",
    "TCPTimeWaitOverflow",
    "PAWSActive",
    "PAWSPassive",
    "PAWSEstab",
    "PAWSTimewait",
    "TCPACKSkippedTimeWait",
    "TCPSynRetrans",
    "Tcp:OutRsts",
    "Tcp:ActiveOpens",
    "Tcp:PassiveOpens",
    "Tcp:AttemptFails",
    "Tcp:EstabResets",
    "Tcp:RetransSegs",
)
FROM_CLIENT = Match(src_port=CLIENT_PORT, dst_port=SERVER_PORT)
FROM_SERVER = Match(src_port=SERVER_PORT, dst_port=CLIENT_PORT)
TW_ACK = "ACK of the old connection (from TIME_WAIT)"
TW_ISN = "the TIME_WAIT socket's snd_nxt + 65537"
CLOCK_ISN = "the ISN clock (not from TIME_WAIT)"


@dataclass(kw_only=True)
class TimeWaitReopenResult(ExperimentResult):
    QUIET_OPTIONS = {"family": 4}  # an IPv4 run reads as before IPv6 was an option

    server_state: str = shown()  # the old connection's server side after the close
    client_state: str = shown()  # the old connection's client side after the close
    syn_isn_beyond_old: Optional[bool] = shown()  # new SYN's seq after the old rcv_nxt?
    syn_timestamp_newer: Optional[bool] = shown()  # new SYN's tsval above the old ts_recent?
    first_syn_answer: str = shown()  # what the server sent back to the first SYN
    client_reply: str = shown()  # what the client sent in answer to that
    connected: bool = shown()
    connect_error: Optional[str] = shown()  # errno name when connect() failed
    connected_after: str = shown()  # "at once", "after 1 SYN retransmission (about 1 s)", ...
    syn_transmissions: int = shown()  # SYNs the client sent for the new connection
    server_isn_from: Optional[str] = shown()  # where the new connection's server ISN came from
    time_wait_after: str = shown()  # the server's TIME_WAIT socket once the client connected
    new_states: dict = shown()  # the new connection's two ends
    counters: dict = shown()  # moved from the reconnect to its end
    explanation: str = shown()
    # Timing-dependent detail, kept out of summary():
    connect_seconds: Optional[float]
    isn_advance: Optional[int]  # new SYN's seq minus the old connection's ISN


def _rounded(seconds: float, syns: int) -> str:
    """How long connect() took, in words that are the same on every run."""
    if syns <= 1:
        return "at once" if seconds < 0.5 else f"after about {round(seconds):g} s"
    retrans = syns - 1
    plural = "s" if retrans != 1 else ""
    if seconds < 0.5:
        return f"after {retrans} SYN retransmission{plural}, well before the 1 s retransmission timeout"
    return f"after {retrans} SYN retransmission{plural} (about {round(seconds):g} s)"


class OldClosed(NamedTuple):
    """The old connection after the server's close."""

    server_state: str
    client_state: str
    counters: dict  # the counters just before the close


class Reconnect(NamedTuple):
    """The new client's connect() from the same port."""

    mark: float  # when it began (capture time)
    error: Optional[str]  # errno name when connect() failed
    seconds: float  # how long connect() took
    new_states: dict  # the new connection's two ends
    time_wait_after: str  # the server's TIME_WAIT socket once the client connected
    counters: dict  # moved from the close to the end


class Exchange(NamedTuple):
    """Both connections' segments as captured, without the bulk transfer."""

    segments: list
    old_syn: TcpView
    old_client_fin: TcpView
    old_server_fin: TcpView
    new: list  # the new connection's segments

    @property
    def rcv_nxt(self) -> int:
        """The server's rcv_nxt in TIME_WAIT."""
        return (self.old_client_fin.seq + 1) % 2**32

    @property
    def snd_nxt(self) -> int:
        """The server's snd_nxt in TIME_WAIT."""
        return (self.old_server_fin.seq + 1) % 2**32


class SynFate(NamedTuple):
    """How the server's TIME_WAIT socket met the new connection's first SYN."""

    syns: list  # the client's SYNs of the new connection, first one first
    beyond: bool  # its sequence number after the old rcv_nxt?
    newer: Optional[bool]  # its timestamp above the old connection's last one?
    answer: Optional[TcpView]  # the server's first answer
    first_answer: str  # that answer in words
    reply: Optional[TcpView]  # the client's reply to it
    isn_from: Optional[str]  # where the new connection's server ISN came from

    def note(self, view: TcpView) -> str:
        if view is self.answer and self.first_answer == TW_ACK:
            return "from TIME_WAIT"
        if any(view is s for s in self.syns[1:]):
            return "SYN retransmitted"
        return ""


def outrun_isn_clock(lab, client: socket.socket, server: socket.socket) -> tuple[float, float]:
    """The old connection's client sends :data:`BULK` bytes: ``(start, end)`` of the transfer."""
    lab.step(f"the client sends {BULK} bytes, faster than the ISN clock")
    start = lab.now()
    sender = threading.Thread(target=client.sendall, args=(b"a" * BULK,), daemon=True)
    sender.start()
    got = 0
    server.settimeout(20)
    while got < BULK:
        data = server.recv(1 << 20)
        if not data:
            raise RuntimeError(f"the old connection ended after {got} of {BULK} bytes")
        got += len(data)
    sender.join(5)
    lab.wait_for(lambda: unacked(client) == 0, "the bulk to be acknowledged")
    end = lab.now()
    lab.settle(quiet=0.1)  # let the capture catch up before the close
    return start, end


def close_server_first(lab, client: socket.socket, server: socket.socket, timestamps: bool) -> OldClosed:
    counters = lab.counters()
    lab.step("the server closes first")
    server.close()
    client.settimeout(5)
    assert client.recv(1) == b""
    # The client acknowledges the server's FIN on its own, at once (TCP_QUICKACK sends the
    # pending ACK). Left delayed, that ACK rides on the client's FIN only when close() comes
    # within the delayed-ACK timeout, which a busy machine can miss.
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
    client.close()
    lab.wait_for(
        lambda: (
            lab.state_of(SERVER_PORT, CLIENT_PORT) == "TIME_WAIT"
            and lab.state_of(CLIENT_PORT, SERVER_PORT) == "CLOSED"
        ),
        "the server's TIME_WAIT and the client's CLOSED",
    )
    closed = OldClosed(
        lab.state_of(SERVER_PORT, CLIENT_PORT), lab.state_of(CLIENT_PORT, SERVER_PORT), counters
    )
    if timestamps:
        time.sleep(TS_TICK)  # a timestamp of the same millisecond is not newer
    return closed


def reconnect(lab, listener: socket.socket, before: dict) -> Reconnect:
    lab.step("reconnecting from the same source port")
    mark = lab.now()
    again = lab.new_socket()
    again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    again.bind((lab.address, CLIENT_PORT))
    again.settimeout(5)
    error = None
    t0 = time.monotonic()
    try:
        again.connect((lab.address, SERVER_PORT))
    except OSError as exc:
        error = errno_name(exc)
    seconds = time.monotonic() - t0
    new_states = {}
    if error is None:
        lab.track(listener.accept()[0])
        new_states = {
            "client": lab.state_of(CLIENT_PORT, SERVER_PORT),
            "server": lab.state_of(SERVER_PORT, CLIENT_PORT),
        }
    tw_left = [
        s
        for s in lab.sockets([SERVER_PORT])
        if s.local[1] == SERVER_PORT and s.remote[1] == CLIENT_PORT and s.state == "TIME_WAIT"
    ]
    lab.settle(quiet=0.1)
    moved = counter_delta(before, lab.counters(), COUNTERS)
    return Reconnect(mark, error, seconds, new_states, "TIME_WAIT" if tw_left else "gone", moved)


def read_exchange(lab, bulks: list, mark: float) -> Exchange:
    """Waits until the capture holds the old connection's SYN and both its FINs."""

    def exchange():
        views = views_outside(lab, bulks)
        mine = [v for v in views if {v.src[1], v.dst[1]} == {CLIENT_PORT, SERVER_PORT}]
        old = [v for v in mine if v.t < mark]
        fins = [
            next((v for v in old if m.matches(v) and "FIN" in v.flags), None)
            for m in (FROM_CLIENT, FROM_SERVER)
        ]
        syn = next((v for v in old if v.flags == "SYN"), None)
        return (mine, *fins, syn) if all(fins) and syn else None

    mine, client_fin, server_fin, syn = lab.wait_for(
        exchange, "the old connection's SYN and FINs in the capture", timeout=3, interval=0.1
    )
    return Exchange(mine, syn, client_fin, server_fin, [v for v in mine if v.t >= mark])


def syn_fate(ex: Exchange, outrun: bool) -> SynFate:
    """What the capture shows of the new SYN and the TIME_WAIT socket's answer."""
    syns = [v for v in ex.new if v.flags == "SYN" and FROM_CLIENT.matches(v)]
    if not syns:
        raise RuntimeError("the capture shows no SYN of the new connection")
    first_syn = syns[0]
    beyond = seq_gt(first_syn.seq, ex.rcv_nxt)
    if outrun and beyond:
        raise RuntimeError(
            f"the old connection's {BULK} bytes did not outrun the ISN clock "
            "(the new SYN's sequence number is beyond the old rcv_nxt)"
        )
    newer = None
    if ex.old_client_fin.tsval is not None and first_syn.tsval is not None:
        newer = seq_diff(ex.old_client_fin.tsval, first_syn.tsval) < 0
    after_syn = [v for v in ex.new if v.t >= first_syn.t and v is not first_syn]
    answer = next((v for v in after_syn if FROM_SERVER.matches(v)), None)
    if answer is None:
        first_answer = "nothing"
    elif answer.flags == "SYN|ACK":
        first_answer = "SYN|ACK"
    elif answer.flags == "ACK" and (answer.seq, answer.ack) == (ex.snd_nxt, ex.rcv_nxt):
        first_answer = TW_ACK
    else:
        first_answer = answer.flags
    reply = next(
        (v for v in after_syn if FROM_CLIENT.matches(v) and (answer is None or v.t >= answer.t)), None
    )
    synack = next((v for v in ex.new if v.flags == "SYN|ACK"), None)
    isn_from = None
    if synack is not None:
        isn_from = TW_ISN if (synack.seq - ex.snd_nxt) % 2**32 == 65537 else CLOCK_ISN
    return SynFate(syns, beyond, newer, answer, first_answer, reply, isn_from)


def _explanation(error: Optional[str], fate: SynFate) -> str:
    if error is None and fate.first_answer == "SYN|ACK":
        return "the server's TIME_WAIT socket accepted the SYN as a new incarnation: " + (
            "its sequence number is beyond the old connection's"
            if fate.beyond
            else "its timestamp is newer than the old connection's"
        )
    if error is None:
        return (
            "the server's TIME_WAIT socket did not accept the SYN (its sequence "
            "number is not beyond the old connection's"
            + (", and its timestamp is not newer" if fate.newer is False else "")
            + (
                ") and answered with an ACK of the old connection; the client, "
                "in SYN_SENT, answered that with a reset, which ended the TIME_WAIT "
                "socket, and retransmitted its SYN, which found the listener"
                if fate.reply is not None and fate.reply.flags == "RST"
                else ")"
            )
        )
    return f"connect() failed with {error}"


def body(lab, timestamps: bool, outrun: bool, family: int = 4) -> dict:
    address = lab.use_family(family)
    lab.start_capture()
    listener = lab.listener(SERVER_PORT)
    lab.step("the old connection")
    client, server = lab.accepted(listener, CLIENT_PORT, reuseaddr=True)
    bulks = [outrun_isn_clock(lab, client, server)] if outrun else []
    closed = close_server_first(lab, client, server, timestamps)
    again = reconnect(lab, listener, closed.counters)
    ex = read_exchange(lab, bulks, again.mark)
    fate = syn_fate(ex, outrun)
    notes = {id(v): fate.note(v) for v in ex.segments}
    trace = to_trace(
        ex.segments, (address, CLIENT_PORT), (address, SERVER_PORT), lambda v: notes.get(id(v), "")
    )
    return {
        "trace": trace.to_dicts(),
        "server_state": closed.server_state,
        "client_state": closed.client_state,
        "syn_isn_beyond_old": fate.beyond,
        "syn_timestamp_newer": fate.newer,
        "first_syn_answer": fate.first_answer,
        "client_reply": fate.reply.flags if fate.reply is not None else "nothing",
        "connected": again.error is None,
        "connect_error": again.error,
        "connected_after": _rounded(again.seconds, len(fate.syns)) if again.error is None else "",
        "syn_transmissions": len(fate.syns),
        "server_isn_from": fate.isn_from,
        "time_wait_after": again.time_wait_after,
        "new_states": again.new_states,
        "counters": again.counters,
        "explanation": _explanation(again.error, fate),
        "connect_seconds": round(again.seconds, 3),
        "isn_advance": (fate.syns[0].seq - ex.old_syn.seq) % 2**32,
    }


register(
    Experiment(
        name="time-wait-reopen",
        captures=True,
        summary="The server closes first; the client reconnects at once on the same 4-tuple, "
        "and the SYN meets the server's TIME_WAIT.",
        params=(
            Param("timestamps", bool, True, "TCP timestamps (net.ipv4.tcp_timestamps)"),
            Param(
                "outrun",
                bool,
                False,
                "the old connection's client sends 32 MiB first, outrunning the ISN clock, so "
                "the new SYN's sequence number is not beyond the old connection's",
            ),
            Param("family", int, 4, "IP version: 4 (127.0.0.1) or 6 (::1)", choices=(4, 6)),
        ),
        body=f"{__name__}:body",
        result=TimeWaitReopenResult,
        sysctls=lambda p: {"net.ipv4.tcp_timestamps": 1 if p["timestamps"] else 0},
        timeout=lambda p: 30.0,
        variants=tuple({"timestamps": t, "outrun": o} for t in (True, False) for o in (True, False))
        + ({"timestamps": True, "outrun": True, "family": 6},),
    )
)
