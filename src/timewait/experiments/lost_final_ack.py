"""lost-final-ack: the active closer's last ACK is lost; who answers the passive side's
retransmitted FIN?

With TIME_WAIT the closer still holds the connection: it ACKs the retransmitted FIN,
restarts its TIME_WAIT timer, and the passive side closes cleanly. Without it
(``tcp_max_tw_buckets=0`` makes the kernel skip TIME_WAIT) the retransmitted FIN finds no
socket, the closer's kernel answers with a RST, and the passive application sees an error.

The client closes with ``shutdown(SHUT_WR)`` and calls ``close()`` once the server's FIN has
arrived: the same segments as a plain ``close()``, without depending on whether the server's
ACK of the client's FIN leaves on its own or with the server's FIN.

The passive application uses ``shutdown(SHUT_WR)`` instead of ``close()`` so that it keeps
its socket and can read the outcome with ``getsockopt(SO_ERROR)``. It cannot use
``recv()``: once the peer's FIN has arrived, Linux reports end of file (0 bytes) even after
a RST (``peer_recv`` shows it; ``peer_poll`` shows that ``poll()`` does report the error).

``fin_losses`` also drops the first retransmissions of the passive side's FIN, so that the
capture shows the backoff and the TIME_WAIT timer runs down before a FIN gets through:
``timer_before_s``/``timer_after_s`` are the closer's TIME_WAIT timer read just before and
just after it answers (tcp_timewait_state_process() re-arms it with TCP_TIMEWAIT_LEN).

``new_connection`` makes the client, right after its close, open a new connection from the
same port 40000: to server port 5001 (``other-port``; the stray FIN then meets no socket, as
TCP demultiplexes on all four numbers) or to port 5000 again (``same-port``, the same
4-tuple; its SYN reaches the passive side while that side is still in LAST_ACK).
"""

from __future__ import annotations

import select
import socket
import threading
import time
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Optional

from ..faults import Match
from ..observe import COUNTERS, counter_delta, ss_text
from .base import Experiment, ExperimentResult, Param, register
from .common import errno_name, socket_error, tcp_state

SERVER_PORT = 5000
OTHER_SERVER_PORT = 5001
CLIENT_PORT = 40000
NEW_CONNECTION = ("none", "other-port", "same-port")
EXTRA_COUNTERS = ("TCPLossProbes", "TCPLossProbeRecovery")
POLL_NAMES = (
    (select.POLLIN, "POLLIN"),
    (select.POLLOUT, "POLLOUT"),
    (select.POLLERR, "POLLERR"),
    (select.POLLHUP, "POLLHUP"),
    (getattr(select, "POLLRDHUP", 0x2000), "POLLRDHUP"),
)


@dataclass
class LostFinalAckResult(ExperimentResult):
    closer_state: str = ""  # the active closer's state once the passive side is done
    peer_error: Optional[str] = None  # errno name of SO_ERROR on the passive socket, None if clean
    peer_final_state: str = ""
    fin_retransmissions: int = 0  # passive side's FINs after the first
    answer_to_retransmitted_fin: str = ""  # what the closer sent back: "ACK" or "RST"
    rst_seen: bool = False
    rto_at_least_200ms: bool = False  # Linux's minimum RTO, even on loopback
    fin_gaps_s: list = field(default_factory=list)  # seconds between successive FINs
    counters: dict = field(default_factory=dict)
    socket_table: str = ""  # ss-like view right after the closer's close (and new connection)
    backoff: list = field(default_factory=list)  # gaps between FINs, in units of the first gap
    loss_probes: int = 0  # retransmissions sent as tail loss probes (TCPLossProbes)
    fin_times_s: list = field(default_factory=list)  # each FIN, seconds after the first
    timer_before_s: Optional[int] = None  # closer's TIME_WAIT timer just before it answered
    timer_after_s: Optional[int] = None  # ... and just after (whole seconds, rounded)
    timer_readings_s: list = field(default_factory=list)  # the same two, to 10 ms
    peer_recv: str = ""  # what recv() on the passive socket returned once it was over
    peer_poll: str = ""  # what poll() reported on it
    new_connection_state: str = ""  # the client's new connection at the end ("" if none)
    new_connection_error: Optional[str] = None  # its SO_ERROR, or connect()'s errno

    SHOWN = (
        "closer_state",
        "answer_to_retransmitted_fin",
        "fin_retransmissions",
        "rst_seen",
        "rto_at_least_200ms",
        "peer_error",
        "peer_final_state",
        "socket_table",
    )
    # Extra lines only where they say something, so the original variants read as before.
    EXTRA = (
        "backoff",
        "loss_probes",
        "timer_before_s",
        "timer_after_s",
        "peer_recv",
        "peer_poll",
        "new_connection_state",
        "new_connection_error",
    )

    def summary(self) -> str:
        text = super().summary()
        extra = []
        for name in self.EXTRA:
            value = getattr(self, name)
            if value not in (None, "", []):
                extra.append(f"  {name}: {value}")
        if not extra:
            return text
        # before the (multi-line) socket table, which ends the summary
        head, sep, table = text.partition("\n  socket_table:")
        return "\n".join([head] + extra) + sep + table

    @property
    def end_states(self) -> dict:
        """The two ends' states by role, as four-way-close and the model name them: the
        client (the closer) once it has answered the server's FIN, the server at the end."""
        return {"client": self.closer_state, "server": self.peer_final_state}


def _time_wait_timer(lab) -> Optional[float]:
    for s in lab.sockets([CLIENT_PORT]):
        if s.local[1] == CLIENT_PORT and s.remote[1] == SERVER_PORT and s.state == "TIME_WAIT":
            return s.expires_s
    return None


def _poll_names(events: int) -> str:
    return "|".join(name for bit, name in POLL_NAMES if events & bit) or "none"


def body(lab, time_wait: bool, fin_losses: int = 0, new_connection: str = "none", family: int = 4) -> dict:
    lab.use_family(family)
    lab.start_capture()
    listener = lab.listener(SERVER_PORT)
    if new_connection == "other-port":
        lab.listener(OTHER_SERVER_PORT)
    # A client that means to reuse its port sets SO_REUSEADDR first: Linux refuses the bind
    # while a TIME_WAIT socket without it holds the port (EADDRINUSE).
    client, server = lab.accepted(listener, CLIENT_PORT, reuseaddr=new_connection != "none")
    if new_connection != "same-port":  # the new incarnation needs somebody to connect to
        listener.close()

    lab.step("exchanging a request and a reply")
    client.sendall(b"request\n")
    assert server.recv(100) == b"request\n"
    replied_at = lab.now()
    server.sendall(b"reply\n")
    assert client.recv(100) == b"reply\n"
    lab.wait_for_segment(Match(src_port=CLIENT_PORT, flags="ACK"), "the ACK of the reply", after=replied_at)

    before = lab.counters()
    lab.drop(Match(src_port=CLIENT_PORT, dst_port=SERVER_PORT, flags="ACK"), count=1, note="dropped")
    lab.step("client closes")
    # shutdown() sends the same FIN as close(), but the client keeps its socket until the
    # server's FIN has arrived. An orphan would have to wait in FIN_WAIT_2 in a TIME_WAIT
    # bucket too, and with tcp_max_tw_buckets=0 it would vanish the moment a slow server's
    # pure ACK arrived, so the RST would answer the server's first FIN, not a retransmission.
    client.shutdown(socket.SHUT_WR)
    server.settimeout(5)
    assert server.recv(100) == b""  # the client's FIN arrived
    lab.step("server shuts down its sending side (keeps the socket to read its error)")
    closing_at = lab.now()
    server.shutdown(socket.SHUT_WR)
    lab.wait_for_segment(
        Match(src_port=SERVER_PORT, dst_port=CLIENT_PORT, flags="FIN|ACK"),
        "the server's FIN",
        after=closing_at,
    )
    if fin_losses:
        # installed after the first FIN went through, well before the first retransmission
        lab.drop(
            Match(src_port=SERVER_PORT, dst_port=CLIENT_PORT, flags="FIN|ACK"),
            count=fin_losses,
            note="dropped",
        )
    lab.wait_for(
        lambda: lab.state_of(CLIENT_PORT, SERVER_PORT) != "FIN_WAIT_2",
        "the client to answer the server's FIN",
    )
    closer_state = lab.state_of(CLIENT_PORT, SERVER_PORT)
    # The closer's TIME_WAIT timer, read every few milliseconds from now on, so a reading
    # precedes the retransmitted FIN even when the steps below are slow on a loaded machine.
    readings: list = []  # (read started, read ended, TIME_WAIT timer)
    stop_reading = threading.Event()

    def read_timers():
        while not stop_reading.is_set():
            started = lab.now()
            value = _time_wait_timer(lab)
            readings.append((started, lab.now(), value))
            stop_reading.wait(0.002)

    reader = threading.Thread(target=read_timers, name="time-wait-timer", daemon=True)
    if closer_state == "TIME_WAIT":
        reader.start()
    client.close()

    new, new_error = None, None
    if new_connection != "none":
        port = OTHER_SERVER_PORT if new_connection == "other-port" else SERVER_PORT
        try:
            new = lab.connect(port, src_port=CLIENT_PORT, reuseaddr=True)
        except OSError as exc:
            new_error = errno_name(exc)
    ports = [SERVER_PORT] + ([OTHER_SERVER_PORT] if new_connection == "other-port" else [])
    table = ss_text(lab.sockets(ports), timers=False)

    lab.step("server waits for the end of its connection")
    try:
        lab.wait_for(
            lambda: tcp_state(server) == "CLOSED",
            "the server's connection to end",
            timeout=15,
            interval=0.002,
        )
        done_at = lab.now()
        if reader.is_alive():
            lab.wait_for(
                lambda: bool(readings) and readings[-1][0] >= done_at,
                "a timer reading after the end",
                timeout=5,
                interval=0.002,
            )
    finally:
        stop_reading.set()
        if reader.is_alive():
            reader.join(timeout=5)
    poller = select.poll()
    poller.register(
        server, select.POLLIN | select.POLLERR | select.POLLHUP | getattr(select, "POLLRDHUP", 0x2000)
    )
    events = poller.poll(1000)
    peer_poll = _poll_names(events[0][1]) if events else "none"
    server.setblocking(False)
    try:
        got = server.recv(100)
        peer_recv = "0 bytes (end of file)" if got == b"" else f"{len(got)} bytes"
    except OSError as exc:
        peer_recv = errno_name(exc)
    peer_error = socket_error(server)
    time.sleep(0.05)

    new_state = ""
    if new is not None:
        new_state = tcp_state(new)
        new_error = socket_error(new)
    elif new_connection != "none":
        new_state = "CLOSED"

    trace = lab.trace(CLIENT_PORT, SERVER_PORT)
    views = [
        v
        for v in lab.segments(start=closing_at)
        if v.src[1] == SERVER_PORT and v.dst[1] == CLIENT_PORT and "FIN" in v.flags
    ]
    fins = [s for s in trace if s.src == "server" and s.has("FIN")]
    last_fin = trace.segments.index(fins[-1])
    answers = [s for s in trace.segments[last_fin + 1 :] if s.src == "client"]
    times = [round(s.t - fins[0].t, 3) for s in fins]
    gaps = [round(b - a, 3) for a, b in pairwise(times)]

    timer_before = timer_after = None
    if len(views) > 1 and closer_state == "TIME_WAIT":
        arrived = views[-1].t  # the retransmission that got through
        # "before" ended before the FIN arrived; "after" started after the server's end
        earlier = [v for _, ended, v in readings if ended < arrived and v is not None]
        later = [v for started, _, v in readings if started >= done_at and v is not None]
        if earlier and later:
            timer_before, timer_after = earlier[-1], later[0]
    delta = counter_delta(before, lab.counters(), COUNTERS + EXTRA_COUNTERS)
    return {
        "trace": trace.to_dicts(),
        "closer_state": closer_state,
        "peer_error": peer_error,
        "peer_final_state": tcp_state(server),
        "fin_retransmissions": len(fins) - 1,
        "answer_to_retransmitted_fin": answers[0].flags if len(fins) > 1 and answers else "",
        "rst_seen": any(s.has("RST") for s in trace),
        "rto_at_least_200ms": bool(gaps) and gaps[0] >= 0.2,
        "fin_gaps_s": gaps,
        "counters": delta,
        "socket_table": table,
        "backoff": [round(g / gaps[0]) for g in gaps] if gaps else [],
        "loss_probes": delta.get("TCPLossProbes", 0),
        "fin_times_s": times,
        "timer_before_s": None if timer_before is None else round(timer_before),
        "timer_after_s": None if timer_after is None else round(timer_after),
        "timer_readings_s": [] if timer_before is None else [round(timer_before, 2), round(timer_after, 2)],
        "peer_recv": peer_recv,
        "peer_poll": peer_poll,
        "new_connection_state": new_state,
        "new_connection_error": new_error,
    }


register(
    Experiment(
        name="lost-final-ack",
        captures=True,
        summary="Drop the active closer's final ACK; the passive side retransmits its FIN.",
        params=(
            Param(
                "time_wait",
                bool,
                True,
                "keep TIME_WAIT (off: tcp_max_tw_buckets=0, the kernel skips TIME_WAIT)",
            ),
            Param(
                "fin_losses",
                int,
                0,
                "also drop this many retransmissions of the passive side's FIN",
                minimum=0,
                maximum=4,
            ),
            Param(
                "new_connection",
                str,
                "none",
                "right after its close the client connects again from port 40000: to server "
                "port 5001 (other-port) or to port 5000, the same 4-tuple (same-port)",
                choices=NEW_CONNECTION,
            ),
            Param("family", int, 4, "IP version: 4 (127.0.0.1) or 6 (::1)", choices=(4, 6)),
        ),
        body=f"{__name__}:body",
        result=LostFinalAckResult,
        sysctls=lambda p: {} if p["time_wait"] else {"net.ipv4.tcp_max_tw_buckets": 0},
        timeout=lambda p: 30.0,
        variants=(
            {"time_wait": True},
            {"time_wait": False},
            {"time_wait": True, "fin_losses": 3},
            {"time_wait": False, "fin_losses": 3},
            {"time_wait": False, "new_connection": "other-port"},
            {"time_wait": False, "new_connection": "same-port"},
            {"time_wait": True, "new_connection": "other-port"},
            {"time_wait": True, "new_connection": "same-port"},
            {"time_wait": True, "family": 6},
            {"time_wait": False, "family": 6},
        ),
    )
)
