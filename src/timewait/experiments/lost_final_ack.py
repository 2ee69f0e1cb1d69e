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
They come from a thread polling the socket table every few milliseconds, and count only
within 50 ms before the retransmitted FIN and 100 ms after it; on a machine so busy that the
thread took no reading that close, the run is made again (``missed``, at most twice more).

``new_connection`` makes the client, right after its close, open a new connection from the
same port 40000: to server port 5001 (``other-port``; the stray FIN then meets no socket, as
TCP demultiplexes on all four numbers) or to port 5000 again (``same-port``, the same
4-tuple; its SYN reaches the passive side while that side is still in LAST_ACK, before
the first retransmission of its FIN: on a machine so busy that the SYN left only after that
retransmission, the run is made again, as above).
"""

from __future__ import annotations

import select
import socket
import threading
from dataclasses import dataclass
from itertools import pairwise
from typing import NamedTuple, Optional

from ..faults import Match
from ..observe import COUNTERS, counter_delta, ss_text
from .base import Experiment, ExperimentResult, Param, register, shown
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


@dataclass(kw_only=True)
class LostFinalAckResult(ExperimentResult):
    QUIET_OPTIONS = {"family": 4}  # an IPv4 run reads as before IPv6 was an option

    closer_state: str = shown()  # the active closer's state once the passive side is done
    answer_to_retransmitted_fin: str = shown()  # what the closer sent back: "ACK" or "RST"
    fin_retransmissions: int = shown()  # passive side's FINs after the first
    rst_seen: bool = shown()
    rto_at_least_200ms: bool = shown()  # Linux's minimum RTO, even on loopback
    peer_error: Optional[str] = shown()  # errno name of SO_ERROR on the passive socket, None if clean
    peer_final_state: str = shown()
    # Shown only where they say something, so the original variants read as before:
    backoff: list = shown(only_if_set=True)  # gaps between FINs, in units of the first gap
    loss_probes: int = shown(only_if_set=True)  # retransmissions sent as tail loss probes (TCPLossProbes)
    timer_before_s: Optional[int] = shown(only_if_set=True)  # closer's TIME_WAIT timer before it answered
    timer_after_s: Optional[int] = shown(only_if_set=True)  # ... and just after (whole seconds, rounded)
    peer_recv: str = shown(only_if_set=True)  # what recv() on the passive socket returned once it was over
    peer_poll: str = shown(only_if_set=True)  # what poll() reported on it
    new_connection_state: str = shown(only_if_set=True)  # the client's new connection at the end ("" if none)
    new_connection_error: Optional[str] = shown(only_if_set=True)  # its SO_ERROR, or connect()'s errno
    socket_table: str = shown()  # ss-like view right after the closer's close (and new connection)
    # Not shown:
    fin_gaps_s: list  # seconds between successive FINs
    fin_times_s: list  # each FIN, seconds after the first
    timer_readings_s: list  # timer_before_s and timer_after_s, to 10 ms
    counters: dict

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


class Closing(NamedTuple):
    """The close, with the closer's final ACK dropped."""

    counters: dict  # the counters just before it
    started: float  # when the server began its close (capture time)
    closer_state: str  # the closer's state once it has answered the server's FIN


class NewConnection(NamedTuple):
    """The client's new connection from port 40000 after its close."""

    sock: Optional[socket.socket]
    error: Optional[str]  # connect()'s errno name


class PeerView(NamedTuple):
    """What the passive application can read of how its connection ended."""

    poll: str  # the events poll() reported
    recv: str  # what recv() returned
    error: Optional[str]  # SO_ERROR's errno name


class Fins(NamedTuple):
    """The passive side's FINs, from the trace."""

    times: list  # each FIN, seconds after the first
    gaps: list  # seconds between successive FINs
    answer: str  # what the closer sent back to the retransmitted FIN ("" if none)
    arrived: Optional[float]  # capture time of the retransmission that got through


class Timers(NamedTuple):
    """The closer's TIME_WAIT timer just before and just after it answered, in seconds."""

    before: Optional[float]
    after: Optional[float]


FRESH_S = 0.05  # how close to the retransmitted FIN a timer reading must be to count


class TimerWatch:
    """A thread reading the closer's TIME_WAIT timer every few milliseconds, so that a
    reading precedes the retransmitted FIN even when the steps around it are slow on a
    loaded machine (a reading while the closer is not in TIME_WAIT finds None)."""

    def __init__(self, lab):
        self.lab = lab
        self.readings: list = []  # (read started, read ended, TIME_WAIT timer)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="time-wait-timer", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = self.lab.now()
            value = _time_wait_timer(self.lab)
            self.readings.append((started, self.lab.now(), value))
            self._stop.wait(0.002)

    def start(self) -> None:
        self._thread.start()

    def running(self) -> bool:
        return self._thread.is_alive() and not self._stop.is_set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def around(self, arrived: Optional[float], done_at: float) -> Timers:
        """The last reading that ended before ``arrived`` and the first that started at
        ``done_at`` or later, each within FRESH_S of ``arrived`` (none without a retransmitted
        FIN that ``arrived``, or when the thread took no reading that close: a reading made
        long before the FIN shows a timer that has barely run down, one made long after shows
        a re-armed timer that has, and the two would not tell a re-arm apart)."""
        if arrived is None:
            return Timers(None, None)
        earlier = [
            v for _, ended, v in self.readings if arrived - FRESH_S <= ended < arrived and v is not None
        ]
        later = [
            v
            for started, _, v in self.readings
            if started >= done_at and started <= arrived + 2 * FRESH_S and v is not None
        ]
        return Timers(earlier[-1], later[0]) if earlier and later else Timers(None, None)


def open_connection(lab, new_connection: str) -> tuple:
    """The connection to close: ``(client, server)``."""
    listener = lab.listener(SERVER_PORT)
    if new_connection == "other-port":
        lab.listener(OTHER_SERVER_PORT)
    # A client that means to reuse its port sets SO_REUSEADDR first: Linux refuses the bind
    # while a TIME_WAIT socket without it holds the port (EADDRINUSE).
    client, server = lab.accepted(listener, CLIENT_PORT, reuseaddr=new_connection != "none")
    if new_connection != "same-port":  # the new incarnation needs somebody to connect to
        listener.close()
    return client, server


def request_and_reply(lab, client: socket.socket, server: socket.socket) -> None:
    lab.step("exchanging a request and a reply")
    client.sendall(b"request\n")
    assert server.recv(100) == b"request\n"
    replied_at = lab.now()
    server.sendall(b"reply\n")
    assert client.recv(100) == b"reply\n"
    lab.wait_for_segment(Match(src_port=CLIENT_PORT, flags="ACK"), "the ACK of the reply", after=replied_at)


def close_losing_final_ack(
    lab, client: socket.socket, server: socket.socket, fin_losses: int, timers: TimerWatch
) -> Closing:
    counters = lab.counters()
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
    started = lab.now()
    server.shutdown(socket.SHUT_WR)
    # From the server's FIN on (a reading before the client entered TIME_WAIT finds none), so
    # that one precedes the retransmitted FIN however slowly the steps below run.
    timers.start()
    if fin_losses:
        # installed after the first FIN went through, well before the first retransmission
        # (only then: a new connection must leave within the RTO, before the retransmission)
        lab.wait_for_segment(
            Match(src_port=SERVER_PORT, dst_port=CLIENT_PORT, flags="FIN|ACK"),
            "the server's FIN",
            after=started,
        )
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
    if closer_state != "TIME_WAIT":
        timers.stop()
    return Closing(counters, started, closer_state)


def connect_again(lab, new_connection: str) -> NewConnection:
    if new_connection == "none":
        return NewConnection(None, None)
    port = OTHER_SERVER_PORT if new_connection == "other-port" else SERVER_PORT
    try:
        return NewConnection(lab.connect(port, src_port=CLIENT_PORT, reuseaddr=True), None)
    except OSError as exc:
        return NewConnection(None, errno_name(exc))


def socket_table(lab, new_connection: str) -> str:
    """The server ports' sockets, ss-like, without timers."""
    ports = [SERVER_PORT] + ([OTHER_SERVER_PORT] if new_connection == "other-port" else [])
    return ss_text(lab.sockets(ports), timers=False)


def wait_for_the_end(lab, server: socket.socket, timers: TimerWatch) -> float:
    """Waits until the server's connection has ended, and for a timer reading after that;
    returns when it ended."""
    lab.step("server waits for the end of its connection")
    try:
        lab.wait_for(
            lambda: tcp_state(server) == "CLOSED",
            "the server's connection to end",
            timeout=15,
            interval=0.002,
        )
        done_at = lab.now()
        if timers.running():
            lab.wait_for(
                lambda: bool(timers.readings) and timers.readings[-1][0] >= done_at,
                "a timer reading after the end",
                timeout=5,
                interval=0.002,
            )
    finally:
        timers.stop()
    return done_at


def what_the_peer_sees(server: socket.socket) -> PeerView:
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
    return PeerView(peer_poll, peer_recv, socket_error(server))


def new_connection_end(new: NewConnection, new_connection: str) -> tuple:
    """The new connection's state at the end and its error: ``(state, error)``."""
    if new.sock is not None:
        return tcp_state(new.sock), socket_error(new.sock)
    return ("" if new_connection == "none" else "CLOSED"), new.error


def read_fins(lab, trace, started: float) -> Fins:
    views = [
        v
        for v in lab.segments(start=started)
        if v.src[1] == SERVER_PORT and v.dst[1] == CLIENT_PORT and "FIN" in v.flags
    ]
    fins = [s for s in trace if s.src == "server" and s.has("FIN")]
    last_fin = trace.segments.index(fins[-1])
    answers = [s for s in trace.segments[last_fin + 1 :] if s.src == "client"]
    times = [round(s.t - fins[0].t, 3) for s in fins]
    gaps = [round(b - a, 3) for a, b in pairwise(times)]
    return Fins(
        times,
        gaps,
        answers[0].flags if len(fins) > 1 and answers else "",
        views[-1].t if len(views) > 1 else None,
    )


def body(lab, time_wait: bool, fin_losses: int = 0, new_connection: str = "none", family: int = 4) -> dict:
    lab.use_family(family)
    lab.start_capture()
    client, server = open_connection(lab, new_connection)
    request_and_reply(lab, client, server)
    timers = TimerWatch(lab)
    closing = close_losing_final_ack(lab, client, server, fin_losses, timers)
    # Read at once, before the server's FIN is retransmitted (200 ms on), while it is in
    # LAST_ACK; closing the client's descriptor changes nothing in the table.
    table = socket_table(lab, new_connection) if new_connection == "none" else ""
    client.close()
    new = connect_again(lab, new_connection)
    table = table or socket_table(lab, new_connection)
    done_at = wait_for_the_end(lab, server, timers)
    peer = what_the_peer_sees(server)
    lab.settle()  # the capture, a thread of its own, has taken in the last FIN and its answer
    new_state, new_error = new_connection_end(new, new_connection)
    trace = lab.trace(CLIENT_PORT, SERVER_PORT)
    fins = read_fins(lab, trace, closing.started)
    timer = timers.around(fins.arrived, done_at)  # none if the closer was not in TIME_WAIT
    delta = counter_delta(closing.counters, lab.counters(), COUNTERS + EXTRA_COUNTERS)
    gaps = fins.gaps
    return {
        "trace": trace.to_dicts(),
        "closer_state": closing.closer_state,
        "peer_error": peer.error,
        "peer_final_state": tcp_state(server),
        "fin_retransmissions": len(fins.times) - 1,
        "answer_to_retransmitted_fin": fins.answer,
        "rst_seen": any(s.has("RST") for s in trace),
        "rto_at_least_200ms": bool(gaps) and gaps[0] >= 0.2,
        "fin_gaps_s": gaps,
        "counters": delta,
        "socket_table": table,
        "backoff": [round(g / gaps[0]) for g in gaps] if gaps else [],
        "loss_probes": delta.get("TCPLossProbes", 0),
        "fin_times_s": fins.times,
        "timer_before_s": None if timer.before is None else round(timer.before),
        "timer_after_s": None if timer.after is None else round(timer.after),
        "timer_readings_s": []
        if timer.before is None or timer.after is None
        else [round(timer.before, 2), round(timer.after, 2)],
        "peer_recv": peer.recv,
        "peer_poll": peer.poll,
        "new_connection_state": new_state,
        "new_connection_error": new_error,
    }


def _missed(p: dict, data: dict) -> str:
    """Why this run did not make the moment it is about (Experiment.missed), if it did not."""
    retransmitted = data["fin_retransmissions"] >= 1
    if data["closer_state"] == "TIME_WAIT" and retransmitted and not data["timer_readings_s"]:
        return "no TIME_WAIT timer reading around the retransmitted FIN"
    if p.get("new_connection") == "same-port" and not p.get("fin_losses") and retransmitted:
        return (
            "the new connection's SYN left after the server's FIN was retransmitted, "
            "not within LAST_ACK's first retransmission timeout"
        )
    return ""


register(
    Experiment(
        name="lost-final-ack",
        captures=True,
        missed=_missed,
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
