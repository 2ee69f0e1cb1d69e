"""four-way-close: open a connection, exchange a little data, close it, watch every segment.

Variants: who closes first (``closer``), the passive side closing at once so that its FIN
carries the ACK of the first FIN (``merged_fin_ack``: three segments instead of four), and a
half-close (``half_close``: the closer only shuts down its sending side, and the peer still
sends data after the first FIN). ``family=6`` runs the connection over IPv6, on ``::1``.
"""

from __future__ import annotations

import math
import socket
import time
from dataclasses import dataclass
from typing import Optional

from ..faults import Match
from ..observe import ss_rows, ss_text
from .base import Experiment, ExperimentResult, Param, register, shown

SERVER_PORT = 5000
CLIENT_PORT = 40000


@dataclass(kw_only=True)
class FourWayCloseResult(ExperimentResult):
    QUIET_OPTIONS = {"family": 4}  # an IPv4 run reads as before IPv6 was an option

    close_segments: int = shown()  # segments from the first FIN to the last ACK
    end_states: dict = shown()  # endpoint -> RFC 9293 state
    time_wait_side: Optional[str] = shown()  # endpoint left in TIME_WAIT
    time_wait_timer_s: Optional[int] = shown()  # the kernel's timer, seconds, rounded up
    data_after_fin: int = shown()  # bytes the passive side sent after the first FIN (half-close)
    socket_table: str = shown()  # ss-like view just after the close
    # `ss -Htano state time-wait` just after the close, as ss prints it (the time left
    # included, so it differs from run to run); None when ss is not installed
    ss_time_wait: Optional[list]


def body(lab, closer: str, merged_fin_ack: bool, half_close: bool, fin_timeout: int, family: int = 4) -> dict:
    lab.use_family(family)
    lab.start_capture()
    client, server = lab.connection(SERVER_PORT, CLIENT_PORT)
    ends = {"client": client, "server": server}
    ports = {"client": CLIENT_PORT, "server": SERVER_PORT}
    passive = "server" if closer == "client" else "client"
    active_sock, passive_sock = ends[closer], ends[passive]

    lab.step("exchanging a request and a reply")
    client.sendall(b"request\n")
    assert server.recv(100) == b"request\n"
    lab.wait_for_segment(Match(src_port=SERVER_PORT, flags="ACK"), "the ACK of the request")
    replied_at = lab.now()
    server.sendall(b"reply\n")
    assert client.recv(100) == b"reply\n"
    lab.wait_for_segment(Match(src_port=CLIENT_PORT, flags="ACK"), "the ACK of the reply", after=replied_at)

    first_fin_at = lab.now()
    data_after_fin = 0
    if half_close:
        lab.step(f"{closer} shuts down its sending side")
        active_sock.shutdown(socket.SHUT_WR)
    else:
        lab.step(f"{closer} closes")
        active_sock.close()
    passive_sock.settimeout(5)
    assert passive_sock.recv(100) == b""  # end of file: the FIN arrived
    if merged_fin_ack:
        passive_sock.close()  # at once, before the delayed ACK of the FIN leaves
    else:
        lab.wait_for_segment(
            Match(src_port=ports[passive], flags="ACK"),
            "the passive side's ACK of the FIN",
            after=first_fin_at,
        )
        if half_close:
            lab.step(f"{passive} sends data after the first FIN")
            late = b"data after your FIN\n"
            passive_sock.sendall(late)
            active_sock.settimeout(5)
            got = b""
            while len(got) < len(late):
                got += active_sock.recv(100)
            data_after_fin = len(got)
            lab.wait_for_segment(
                Match(src_port=ports[closer], flags="ACK"), "the ACK of the late data", after=first_fin_at
            )
        passive_sock.close()
    lab.wait_for(
        lambda: (
            lab.state_of(ports[closer], ports[passive]) == "TIME_WAIT"
            and lab.state_of(ports[passive], ports[closer]) == "CLOSED"
        ),
        "the closer to reach TIME_WAIT and the peer to close",
    )
    table = lab.sockets([SERVER_PORT])
    tw = [s for s in table if s.state == "TIME_WAIT"]
    ss_time_wait = ss_rows("time-wait", normalise=False)
    if ss_time_wait is not None:  # on the host tier, only this experiment's connection
        ss_time_wait = [r for r in ss_time_wait if f":{SERVER_PORT} " in r + " "]
    if half_close:
        active_sock.close()  # the application lets go; the kernel keeps TIME_WAIT
    time.sleep(0.05)
    trace = lab.trace(CLIENT_PORT, SERVER_PORT)
    first_fin = next(i for i, s in enumerate(trace) if s.has("FIN"))
    return {
        "trace": trace.to_dicts(),
        "close_segments": len(trace) - first_fin,
        "end_states": {
            "client": lab.state_of(CLIENT_PORT, SERVER_PORT),
            "server": lab.state_of(SERVER_PORT, CLIENT_PORT),
        },
        "time_wait_side": closer if tw else None,
        "time_wait_timer_s": math.ceil(tw[0].expires_s) if tw else None,
        "data_after_fin": data_after_fin,
        "socket_table": ss_text(table),
        "ss_time_wait": ss_time_wait,
    }


register(
    Experiment(
        name="four-way-close",
        captures=True,
        summary="Open, exchange data and close a connection; capture every segment of the close.",
        params=(
            Param("closer", str, "client", "which side closes first", choices=("client", "server")),
            Param(
                "merged_fin_ack",
                bool,
                False,
                "the passive side closes at once, so its FIN carries the ACK (three segments)",
            ),
            Param(
                "half_close",
                bool,
                False,
                "the closer shuts down sending only; the peer sends data after the first FIN",
            ),
            Param(
                "fin_timeout",
                int,
                60,
                "net.ipv4.tcp_fin_timeout in seconds (it does not change TIME_WAIT)",
                minimum=1,
                maximum=600,
            ),
            Param("family", int, 4, "IP version: 4 (127.0.0.1) or 6 (::1)", choices=(4, 6)),
        ),
        body=f"{__name__}:body",
        result=FourWayCloseResult,
        sysctls=lambda p: {"net.ipv4.tcp_fin_timeout": p["fin_timeout"]},
        timeout=lambda p: 20.0,
        variants=tuple(
            {"closer": c, "merged_fin_ack": m, "half_close": h}
            for c in ("client", "server")
            for m in (False, True)
            for h in (False, True)
            if not (m and h)
        )
        + ({"fin_timeout": 5},)
        + tuple({"closer": c, "family": 6} for c in ("client", "server")),
    )
)
