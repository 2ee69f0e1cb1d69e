"""fin-wait-2: a closer waits for a FIN its peer's application never sends.

Two connections side by side. On the first the client close()s: its socket is orphaned in
FIN_WAIT_2 and ``net.ipv4.tcp_fin_timeout`` bounds how long the kernel keeps it (Linux keeps
it as a lightweight timewait socket whose substate is FIN_WAIT_2). On the second the client
only shutdown(SHUT_WR)s and keeps its descriptor: tcp_fin_timeout does not apply, and the
socket waits in FIN_WAIT_2 as long as the application holds it. In both the server
application never closes, so the server's side sits in CLOSE_WAIT. When the server finally
closes the first connection, its FIN reaches a client that has forgotten it and is
answered with a RST.

With ``linger2`` the client sets the per-socket option TCP_LINGER2 before it closes, and that
bounds the orphan instead of tcp_fin_timeout. While the orphan exists it keeps its port: a
new socket's bind() to it (without SO_REUSEADDR) fails with EADDRINUSE; once it has gone,
the same bind() succeeds.

Above 60 s (TCP_TIMEWAIT_LEN) the orphan is not made a timewait socket at once: the full
socket waits first on its keepalive timer, and becomes a timewait socket when that fires
(``orphan_timers`` lists the timer kinds seen, in order).

``family=6`` runs both connections over IPv6, on ``::1``.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

from ..faults import Match
from ..observe import ss_text
from .base import Experiment, ExperimentResult, Param, register, shown
from .common import try_port

SERVER_PORT = 5000
ORPHAN_PORT = 40000  # client closes
HELD_PORT = 40001  # client shuts down sending, keeps the descriptor


@dataclass(kw_only=True)
class FinWait2Result(ExperimentResult):
    QUIET_OPTIONS = {"family": 4}  # an IPv4 run reads as before IPv6 was an option

    fin_wait_2_lifetime_s: float  # orphan: from reaching FIN_WAIT_2 until gone
    lifetime_whole_s: int = shown()  # the same, to the nearest second
    orphan_timer: str = shown()  # kernel timer on the orphan: "timewait", it is a timewait socket
    peer_state: str = shown()  # the server's state when the orphan has gone
    held_state: str = shown()  # the shutdown-only socket's state at that moment
    answer_to_late_fin: str = shown()  # what the forgotten client sends when the server closes
    socket_table: str = shown()  # both connections, while the orphan still exists
    bind_while_orphaned: str  # bind() to the orphan's port meanwhile: "ok" or the errno name
    bind_after: str  # the same bind() once the orphan has gone
    orphan_timers: list  # the orphan's timer kinds, in the order seen


def _connect_pair(lab, listener, client_port):
    client, server = lab.accepted(listener, client_port)
    client.sendall(b"request\n")
    assert server.recv(100) == b"request\n"
    return client, server


def body(lab, fin_timeout: int, linger2: int = 0, family: int = 4) -> dict:
    address = lab.use_family(family)
    lab.start_capture()
    listener = lab.listener(SERVER_PORT)
    orphan, orphan_peer = _connect_pair(lab, listener, ORPHAN_PORT)
    held, held_peer = _connect_pair(lab, listener, HELD_PORT)
    listener.close()

    lab.step("client closes one connection and half-closes the other")
    if linger2:
        orphan.setsockopt(socket.IPPROTO_TCP, socket.TCP_LINGER2, linger2)
    closing = lab.now()
    orphan.close()
    held.shutdown(socket.SHUT_WR)
    lab.wait_for(
        lambda: (
            lab.state_of(ORPHAN_PORT, SERVER_PORT) == "FIN_WAIT_2"
            and lab.state_of(HELD_PORT, SERVER_PORT) == "FIN_WAIT_2"
        ),
        "both client sockets to reach FIN_WAIT_2",
    )
    # The orphan's FIN_WAIT_2 timer starts when the ACK of its FIN arrives: its capture time
    # (the kernel's timestamp) is when the orphan reached FIN_WAIT_2, however late the polls
    # above noticed it on a loaded machine.
    fin_acked = lab.wait_for_segment(
        Match(src_port=SERVER_PORT, dst_port=ORPHAN_PORT, flags="ACK"),
        "the server's ACK of the orphan's FIN",
        after=closing,
    )
    reached = fin_acked.t
    sockets = lab.sockets([SERVER_PORT])
    table = ss_text(sockets, timers=False)
    orphan_timer = next(s.timer for s in sockets if s.local[1] == ORPHAN_PORT)
    bind_while_orphaned = try_port(ORPHAN_PORT, address=address) or "ok"

    timers = [orphan_timer]

    def orphan_gone() -> bool:
        row = next(
            (
                s
                for s in lab.sockets([ORPHAN_PORT])
                if s.local[1] == ORPHAN_PORT and s.remote[1] == SERVER_PORT
            ),
            None,
        )
        if row is not None and row.timer != timers[-1]:
            timers.append(row.timer)
        return row is None

    lab.wait_for(
        orphan_gone,
        "the orphaned FIN_WAIT_2 socket to go",
        timeout=(linger2 or fin_timeout) + 10,
        interval=0.01,
    )
    lifetime = lab.now() - reached
    bind_after = try_port(ORPHAN_PORT, address=address) or "ok"
    peer_state = lab.state_of(SERVER_PORT, ORPHAN_PORT)
    held_state = lab.state_of(HELD_PORT, SERVER_PORT)

    lab.step("the server finally closes the first connection")
    closed_at = lab.now()
    orphan_peer.close()
    answer = lab.wait_for_segment(
        Match(src_port=ORPHAN_PORT, dst_port=SERVER_PORT),
        "the client's answer to the late FIN",
        after=closed_at,
    )
    time.sleep(0.05)
    return {
        "trace": lab.trace(ORPHAN_PORT, SERVER_PORT).to_dicts(),
        "fin_wait_2_lifetime_s": round(lifetime, 3),
        "lifetime_whole_s": round(lifetime),
        "orphan_timer": orphan_timer,
        "peer_state": peer_state,
        "held_state": held_state,
        "answer_to_late_fin": answer.flags,
        "socket_table": table,
        "bind_while_orphaned": bind_while_orphaned,
        "bind_after": bind_after,
        "orphan_timers": timers,
    }


register(
    Experiment(
        name="fin-wait-2",
        captures=True,
        summary="An orphaned FIN_WAIT_2 socket whose peer never closes, bounded by tcp_fin_timeout.",
        params=(
            Param("fin_timeout", int, 2, "net.ipv4.tcp_fin_timeout, seconds", minimum=1, maximum=120),
            Param(
                "linger2",
                int,
                0,
                "TCP_LINGER2 on the orphan before close, seconds (0: not set)",
                minimum=0,
                maximum=60,
            ),
            Param("family", int, 4, "IP version: 4 (127.0.0.1) or 6 (::1)", choices=(4, 6)),
        ),
        body=f"{__name__}:body",
        result=FinWait2Result,
        sysctls=lambda p: {"net.ipv4.tcp_fin_timeout": p["fin_timeout"]},
        timeout=lambda p: max(p["fin_timeout"], p["linger2"]) + 20.0,
        variants=(
            {"fin_timeout": 1},
            {"fin_timeout": 2},
            {"fin_timeout": 5},
            {"fin_timeout": 5, "linger2": 1},
            {"fin_timeout": 1, "linger2": 2},
            {"fin_timeout": 62},
            {"fin_timeout": 2, "family": 6},
        ),
    )
)
