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
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import Optional

from ..capture import to_trace
from ..faults import Match
from ..lab import ADDR
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
TW_ACK = "ACK of the old connection (from TIME_WAIT)"
TW_ISN = "the TIME_WAIT socket's snd_nxt + 65537"
CLOCK_ISN = "the ISN clock (not from TIME_WAIT)"


@dataclass(kw_only=True)
class TimeWaitReopenResult(ExperimentResult):
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


def body(lab, timestamps: bool, outrun: bool) -> dict:
    lab.start_capture()
    listener = lab.listener(SERVER_PORT)
    bulks = []

    lab.step("the old connection")
    client, server = lab.accepted(listener, CLIENT_PORT, reuseaddr=True)
    if outrun:
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
        bulks.append((start, lab.now()))
        lab.settle(quiet=0.1)  # let the capture catch up before the close

    before = lab.counters()
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
    server_state = lab.state_of(SERVER_PORT, CLIENT_PORT)
    client_state = lab.state_of(CLIENT_PORT, SERVER_PORT)
    if timestamps:
        time.sleep(TS_TICK)  # a timestamp of the same millisecond is not newer

    lab.step("reconnecting from the same source port")
    mark = lab.now()
    again = lab.track(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    again.bind((ADDR, CLIENT_PORT))
    again.settimeout(5)
    error = None
    t0 = time.monotonic()
    try:
        again.connect((ADDR, SERVER_PORT))
    except OSError as exc:
        error = errno_name(exc)
    seconds = time.monotonic() - t0
    new_states, time_wait_after = {}, ""
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
    time_wait_after = "TIME_WAIT" if tw_left else "gone"
    lab.settle(quiet=0.1)
    moved = counter_delta(before, lab.counters(), COUNTERS)

    # Read the exchange from the capture.
    from_client = Match(src_port=CLIENT_PORT, dst_port=SERVER_PORT)
    from_server = Match(src_port=SERVER_PORT, dst_port=CLIENT_PORT)

    def exchange():
        views = views_outside(lab, bulks)
        mine = [v for v in views if {v.src[1], v.dst[1]} == {CLIENT_PORT, SERVER_PORT}]
        old = [v for v in mine if v.t < mark]
        fins = [
            next((v for v in old if m.matches(v) and "FIN" in v.flags), None)
            for m in (from_client, from_server)
        ]
        syn = next((v for v in old if v.flags == "SYN"), None)
        return (mine, old, *fins, syn) if all(fins) and syn else None

    mine, old, old_client_fin, old_server_fin, old_syn = lab.wait_for(
        exchange, "the old connection's SYN and FINs in the capture", timeout=3, interval=0.1
    )
    new = [v for v in mine if v.t >= mark]
    rcv_nxt = (old_client_fin.seq + 1) % 2**32  # the server's rcv_nxt in TIME_WAIT
    snd_nxt = (old_server_fin.seq + 1) % 2**32  # the server's snd_nxt in TIME_WAIT
    syns = [v for v in new if v.flags == "SYN" and from_client.matches(v)]
    if not syns:
        raise RuntimeError("the capture shows no SYN of the new connection")
    first_syn = syns[0]
    beyond = seq_gt(first_syn.seq, rcv_nxt)
    if outrun and beyond:
        raise RuntimeError(
            f"the old connection's {BULK} bytes did not outrun the ISN clock "
            "(the new SYN's sequence number is beyond the old rcv_nxt)"
        )
    newer = None
    if old_client_fin.tsval is not None and first_syn.tsval is not None:
        newer = seq_diff(old_client_fin.tsval, first_syn.tsval) < 0
    after_syn = [v for v in new if v.t >= first_syn.t and v is not first_syn]
    answer = next((v for v in after_syn if from_server.matches(v)), None)
    if answer is None:
        first_answer = "nothing"
    elif answer.flags == "SYN|ACK":
        first_answer = "SYN|ACK"
    elif answer.flags == "ACK" and (answer.seq, answer.ack) == (snd_nxt, rcv_nxt):
        first_answer = TW_ACK
    else:
        first_answer = answer.flags
    reply = next(
        (v for v in after_syn if from_client.matches(v) and (answer is None or v.t >= answer.t)), None
    )
    synack = next((v for v in new if v.flags == "SYN|ACK"), None)
    isn_from = None
    if synack is not None:
        isn_from = TW_ISN if (synack.seq - snd_nxt) % 2**32 == 65537 else CLOCK_ISN

    def note(v) -> str:
        if v is answer and first_answer == TW_ACK:
            return "from TIME_WAIT"
        if any(v is s for s in syns[1:]):
            return "SYN retransmitted"
        return ""

    notes = {id(v): note(v) for v in mine}
    trace = to_trace(mine, (ADDR, CLIENT_PORT), (ADDR, SERVER_PORT), lambda v: notes.get(id(v), ""))
    if error is None and first_answer == "SYN|ACK":
        explanation = "the server's TIME_WAIT socket accepted the SYN as a new incarnation: " + (
            "its sequence number is beyond the old connection's"
            if beyond
            else "its timestamp is newer than the old connection's"
        )
    elif error is None:
        explanation = (
            "the server's TIME_WAIT socket did not accept the SYN (its sequence "
            "number is not beyond the old connection's"
            + (", and its timestamp is not newer" if newer is False else "")
            + (
                ") and answered with an ACK of the old connection; the client, "
                "in SYN_SENT, answered that with a reset, which ended the TIME_WAIT "
                "socket, and retransmitted its SYN, which found the listener"
                if reply is not None and reply.flags == "RST"
                else ")"
            )
        )
    else:
        explanation = f"connect() failed with {error}"
    return {
        "trace": trace.to_dicts(),
        "server_state": server_state,
        "client_state": client_state,
        "syn_isn_beyond_old": beyond,
        "syn_timestamp_newer": newer,
        "first_syn_answer": first_answer,
        "client_reply": reply.flags if reply is not None else "nothing",
        "connected": error is None,
        "connect_error": error,
        "connected_after": _rounded(seconds, len(syns)) if error is None else "",
        "syn_transmissions": len(syns),
        "server_isn_from": isn_from,
        "time_wait_after": time_wait_after,
        "new_states": new_states,
        "counters": moved,
        "explanation": explanation,
        "connect_seconds": round(seconds, 3),
        "isn_advance": (first_syn.seq - old_syn.seq) % 2**32,
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
        ),
        body=f"{__name__}:body",
        result=TimeWaitReopenResult,
        sysctls=lambda p: {"net.ipv4.tcp_timestamps": 1 if p["timestamps"] else 0},
        timeout=lambda p: 30.0,
        variants=tuple({"timestamps": t, "outrun": o} for t in (True, False) for o in (True, False)),
    )
)
