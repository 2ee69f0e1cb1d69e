"""lost-final-ack: the active closer's last ACK is lost; who answers the passive side's
retransmitted FIN?

With TIME_WAIT the closer still holds the connection: it ACKs the retransmitted FIN and the
passive side closes cleanly. Without it (``tcp_max_tw_buckets=0`` makes the kernel skip
TIME_WAIT) the retransmitted FIN finds no socket, the closer's kernel answers with a RST,
and the passive application sees an error.

The passive application uses ``shutdown(SHUT_WR)`` instead of ``close()`` so that it keeps
its socket and can read the outcome with ``getsockopt(SO_ERROR)``. It cannot use
``recv()``: once the peer's FIN has arrived, Linux reports end of file (0 bytes) even after
a RST.
"""
from __future__ import annotations

import errno
import select
import socket
import time
from dataclasses import dataclass, field
from typing import Optional

from ..faults import Match
from ..observe import counter_delta, ss_text
from .base import Experiment, ExperimentResult, Param, register

SERVER_PORT = 5000
CLIENT_PORT = 40000


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
    socket_table: str = ""  # ss-like view right after the closer's close

    SHOWN = ("closer_state", "answer_to_retransmitted_fin", "fin_retransmissions", "rst_seen",
             "rto_at_least_200ms", "peer_error", "peer_final_state", "socket_table")


def body(lab, time_wait: bool) -> dict:
    lab.start_capture()
    listener = lab.listener(SERVER_PORT)
    client = lab.connect(SERVER_PORT, src_port=CLIENT_PORT)
    server, _ = listener.accept()
    lab.track(server)
    listener.close()

    lab.step("exchanging a request and a reply")
    client.sendall(b"request\n")
    assert server.recv(100) == b"request\n"
    replied_at = lab.now()
    server.sendall(b"reply\n")
    assert client.recv(100) == b"reply\n"
    lab.wait_for_segment(Match(src_port=CLIENT_PORT, flags="ACK"), "the ACK of the reply",
                         after=replied_at)

    before = lab.counters()
    lab.drop(Match(src_port=CLIENT_PORT, dst_port=SERVER_PORT, flags="ACK"), count=1,
             note="dropped")
    lab.step("client closes")
    client.close()
    server.settimeout(5)
    assert server.recv(100) == b""  # the client's FIN arrived
    lab.step("server shuts down its sending side (keeps the socket to read its error)")
    server.shutdown(socket.SHUT_WR)
    lab.wait_for(lambda: lab.state_of(CLIENT_PORT, SERVER_PORT) != "FIN_WAIT_2",
                 "the client to answer the server's FIN")
    closer_state = lab.state_of(CLIENT_PORT, SERVER_PORT)
    table = ss_text(lab.sockets([SERVER_PORT]), timers=False)

    lab.step("server waits for the end of its connection")
    poller = select.poll()
    poller.register(server, select.POLLERR | select.POLLHUP)
    lab.wait_for(lambda: lab.state_of(SERVER_PORT, CLIENT_PORT) == "CLOSED",
                 "the server's connection to end", timeout=10)
    poller.poll(1000)
    err = server.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    time.sleep(0.05)

    trace = lab.trace(CLIENT_PORT, SERVER_PORT)
    fins = [s for s in trace if s.src == "server" and s.has("FIN")]
    last_fin = trace.segments.index(fins[-1])
    answers = [s for s in trace.segments[last_fin + 1:] if s.src == "client"]
    gaps = [round(b.t - a.t, 3) for a, b in zip(fins, fins[1:])]
    return {
        "trace": trace.to_dicts(),
        "closer_state": closer_state,
        "peer_error": errno.errorcode.get(err, str(err)) if err else None,
        "peer_final_state": lab.state_of(SERVER_PORT, CLIENT_PORT),
        "fin_retransmissions": len(fins) - 1,
        "answer_to_retransmitted_fin": answers[0].flags if len(fins) > 1 and answers else "",
        "rst_seen": any(s.has("RST") for s in trace),
        "rto_at_least_200ms": bool(gaps) and gaps[0] >= 0.2,
        "fin_gaps_s": gaps,
        "counters": counter_delta(before, lab.counters()),
        "socket_table": table,
    }


register(Experiment(
    name="lost-final-ack",
    summary="Drop the active closer's final ACK; the passive side retransmits its FIN.",
    params=(
        Param("time_wait", bool, True,
              "keep TIME_WAIT (off: tcp_max_tw_buckets=0, the kernel skips TIME_WAIT)"),
    ),
    body=f"{__name__}:body",
    result=LostFinalAckResult,
    sysctls=lambda p: {} if p["time_wait"] else {"net.ipv4.tcp_max_tw_buckets": 0},
    timeout=lambda p: 20.0,
    variants=({"time_wait": True}, {"time_wait": False}),
))
