"""abortive-close: close() that sends a RST instead of a FIN, and leaves no TIME_WAIT.

Two ways to get there: ``linger-zero`` (SO_LINGER on with a zero timeout, the "fix" often
suggested for too many TIME_WAIT sockets) and ``unread-data`` (closing while received data
is still unread: RFC 2525 says to reset, so the peer learns its data was not consumed).
Before closing, the client sends "last words" that arrive but are not read yet, then a
"postscript" whose first transmission is lost (as if still crossing a slow network). The
server then reads, to show which bytes survive the RST and which error it gets. The RST's
sequence number is past what the server expects (the lost postscript), so RFC 5961 makes
the server answer with a challenge ACK, and the client's reset to that ACK is the one that
ends the connection. ``family=6`` runs it over IPv6, on ``::1``.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass
from typing import Optional

from ..faults import Match
from ..observe import counter_delta, ss_text
from .base import Experiment, ExperimentResult, Param, register, shown
from .common import attempt

SERVER_PORT = 5000
CLIENT_PORT = 40000
LAST_WORDS = b"last words\n"
POSTSCRIPT = b"postscript, still in flight\n"
UNREAD = b"reply the client never reads\n"


@dataclass(kw_only=True)
class AbortiveCloseResult(ExperimentResult):
    QUIET_OPTIONS = {"family": 4}  # an IPv4 run reads as before IPv6 was an option

    close_segment: str = shown()  # what the client's close() put on the wire
    time_wait_created: bool = shown()
    peer_received: int = shown()  # bytes the server application still read after the RST
    peer_lost_data: bool = shown()  # did the client send bytes the server never got?
    lost_bytes: int = shown()
    peer_error: Optional[str] = shown()  # errno name from the server's recv() after that
    peer_send_error: Optional[str] = shown()  # errno name from a later send()
    discarded_unread: int = shown()  # bytes the client had received and never read
    counters: dict = shown()
    socket_table: str = shown()  # just after the close


def body(lab, mode: str, family: int = 4) -> dict:
    lab.use_family(family)
    lab.start_capture()
    client, server = lab.connection(SERVER_PORT, CLIENT_PORT)
    lab.segments()  # load the packet parser now, not while the postscript is in flight
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # Nagle would hold it back

    lab.step("exchanging a request and a reply")
    client.sendall(b"request\n")
    assert server.recv(100) == b"request\n"
    discarded = 0
    if mode == "unread-data":
        server.sendall(UNREAD)
        lab.wait_for(
            lambda: any(
                s.local[1] == CLIENT_PORT and s.recv_queue == len(UNREAD) for s in lab.sockets([CLIENT_PORT])
            ),
            "the reply to wait unread in the client's receive queue",
        )
        discarded = len(UNREAD)
    else:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.sendall(LAST_WORDS)
    lab.wait_for(
        lambda: any(
            s.local[1] == SERVER_PORT and s.recv_queue == len(LAST_WORDS) for s in lab.sockets([SERVER_PORT])
        ),
        "the last words to arrive, unread, at the server",
    )

    # The postscript is lost: its first transmission, and a retransmission should a loaded
    # machine delay the close past the loss probe (about 200 ms for one segment in flight).
    lab.drop(Match(src_port=CLIENT_PORT, dst_port=SERVER_PORT, flags="PSH|ACK"), count=3)
    before = lab.counters()
    client.sendall(POSTSCRIPT)  # on loopback it has been sent, and dropped, when this returns
    closed_at = lab.now()
    lab.step(f"client closes ({mode})")
    client.close()

    def close_segment():  # the client's first FIN or RST after the close: never a resent postscript
        for v in lab.segments(start=closed_at):
            if v.src[1] == CLIENT_PORT and {"FIN", "RST"} & set(v.flags.split("|")):
                return v
        return None

    seg = lab.wait_for(close_segment, "the segment the close sends")
    time.sleep(0.05)
    table = lab.sockets([SERVER_PORT])

    lab.step("server reads what is left, then tries to send")
    server.settimeout(2)
    got = b""
    while True:
        data, err = attempt(lambda: server.recv(100))
        if err or not data:
            break
        got += data
    _, send_err = attempt(lambda: server.send(b"anyone there?\n"))
    return {
        "trace": lab.trace(CLIENT_PORT, SERVER_PORT).to_dicts(),
        "close_segment": seg.flags,
        "time_wait_created": any(s.state == "TIME_WAIT" for s in table),
        "peer_received": len(got),
        "peer_lost_data": len(got) < len(LAST_WORDS + POSTSCRIPT),
        "lost_bytes": len(LAST_WORDS + POSTSCRIPT) - len(got),
        "peer_error": err,
        "peer_send_error": send_err,
        "discarded_unread": discarded,
        "counters": counter_delta(before, lab.counters()),
        "socket_table": ss_text(table, timers=False) if table else "(no sockets left)",
    }


register(
    Experiment(
        name="abortive-close",
        captures=True,
        summary="Close with a RST (SO_LINGER zero, or unread data): no TIME_WAIT, and the peer errs.",
        params=(
            Param(
                "mode", str, "linger-zero", "how the client aborts", choices=("linger-zero", "unread-data")
            ),
            Param("family", int, 4, "IP version: 4 (127.0.0.1) or 6 (::1)", choices=(4, 6)),
        ),
        body=f"{__name__}:body",
        result=AbortiveCloseResult,
        timeout=lambda p: 15.0,
        variants=({"mode": "linger-zero"}, {"mode": "unread-data"}, {"mode": "linger-zero", "family": 6}),
    )
)
