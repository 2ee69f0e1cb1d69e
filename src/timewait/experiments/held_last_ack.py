"""held-last-ack: a LAST_ACK socket its application still holds, bounded by tcp_retries2.

The client closes; the server reads the end of the stream and sends its own FIN with
``shutdown(SHUT_WR)``, keeping its descriptor. Every ACK from the client is dropped, so the
server's socket sits in LAST_ACK retransmitting its FIN. It is not an orphan (a descriptor
holds it), so ``net.ipv4.tcp_orphan_retries`` does not apply: ``tcp_write_timeout()`` in
net/ipv4/tcp_timer.c bounds it with ``net.ipv4.tcp_retries2``, the limit for any
unacknowledged data. When the limit is reached the kernel gives up, the socket goes to
CLOSED, and the application finds ``ETIMEDOUT`` in ``SO_ERROR``.

The limit is a time, not a count: ``retransmits_timed_out()`` compares the time since the
first timeout retransmission with ``tcp_model_timeout()``, which is
``(2**(retries2+1) - 1) * 200 ms`` (TCP_RTO_MIN) up to 9 retries and adds TCP_RTO_MAX
(120 s) for each retry above 9. :func:`limit_s` transcribes it; :func:`predict` turns it
into FIN transmissions and a lifetime for a given RTO. The experiment sets a small
``tcp_retries2`` inside its namespace so that the run is short, and reads the namespace's
own default first; :func:`limit_s` of that default (15) is the 924.6 s the kernel's
documentation quotes. ``family=6`` runs it over IPv6, on ``::1``.
"""

from __future__ import annotations

import math
import socket
import time
from dataclasses import dataclass
from itertools import pairwise
from typing import Optional

from ..faults import Match
from ..observe import COUNTERS, counter_delta
from .base import Experiment, ExperimentResult, Param, register, shown
from .common import client_closed_first, socket_error

SERVER_PORT = 5000
CLIENT_PORT = 40000
RTO_MIN_S = 0.2  # TCP_RTO_MIN
RTO_MAX_S = 120.0  # TCP_RTO_MAX
SYSCTL = "net.ipv4.tcp_retries2"


def limit_s(retries2: int) -> float:
    """``tcp_model_timeout()`` for ``boundary = retries2`` and ``rto_base = TCP_RTO_MIN``:
    the time after the first timeout retransmission at which the kernel gives up."""
    thresh = 9  # ilog2(TCP_RTO_MAX / TCP_RTO_MIN)
    if retries2 <= thresh:
        return round((2 ** (retries2 + 1) - 1) * RTO_MIN_S, 3)
    return round((2 ** (thresh + 1) - 1) * RTO_MIN_S + (retries2 - thresh) * RTO_MAX_S, 3)


def predict(retries2: int, rto_s: float = 0.204) -> tuple:
    """``(fin_transmissions, lifetime_s)`` for a steady RTO of ``rto_s``: the FIN, a tail
    loss probe one RTO later, the first timeout retransmission one RTO after that, then a
    timeout at each doubled RTO until one finds the limit reached (it retransmits no more)."""
    limit = limit_s(retries2)
    fins, t, interval = 3, 2 * rto_s, 2 * rto_s
    stamp = t
    while True:
        t += interval
        interval = min(interval * 2, RTO_MAX_S)
        if t - stamp >= limit:
            return fins, round(t, 3)
        fins += 1


@dataclass(kw_only=True)
class HeldLastAckResult(ExperimentResult):
    QUIET_OPTIONS = {"family": 4}  # an IPv4 run reads as before IPv6 was an option

    namespace_default: Optional[int] = shown()  # tcp_retries2 as a fresh namespace has it
    last_ack_state: str = shown()  # the server's socket after its first timeout retransmission
    last_ack_timer: str
    fin_transmissions: int = shown()  # the server's FINs in the capture: the first plus resends
    predicted_fins: int = shown()  # predict(retries2, first_rto_s)
    backoff: list = shown()  # gaps between FINs, in first-RTO units
    end_state: str = shown()  # "CLOSED" once the kernel gave up
    socket_error: str = shown()  # SO_ERROR the application then reads: "ETIMEDOUT"
    rst_sent: bool = shown()  # did the socket tell the peer when it gave up?
    limit_s: float  # limit_s(retries2)
    lifetime_s: float  # from the first FIN until the socket was gone
    first_rto_s: float
    fin_times_s: list
    counters: dict


def body(lab, retries2: int, family: int = 4) -> dict:
    lab.use_family(family)
    default = int(lab.sysctl(SYSCTL))  # read before this experiment changes it
    lab.sysctl(SYSCTL, retries2)
    lab.start_capture()
    server = client_closed_first(lab, SERVER_PORT, CLIENT_PORT)
    lab.drop(Match(src_port=CLIENT_PORT, dst_port=SERVER_PORT, flags="ACK"), note="dropped")
    before = lab.counters()
    lab.step("server sends its FIN with shutdown() and keeps the socket")
    server.shutdown(socket.SHUT_WR)
    first_fin = lab.wait_for_segment(Match(src_port=SERVER_PORT, flags="FIN|ACK"), "the server's FIN")
    lab.wait_for_segment(
        Match(src_port=SERVER_PORT, flags="FIN|ACK"), "the server's first timeout retransmission", nth=3
    )
    row = next(
        (s for s in lab.sockets([SERVER_PORT]) if s.local[1] == SERVER_PORT and s.remote[1] == CLIENT_PORT),
        None,
    )

    lab.step("waiting for the kernel to give up")
    budget = predict(retries2)[1] * 1.5 + 5
    lab.wait_for(
        lambda: lab.state_of(SERVER_PORT, CLIENT_PORT) == "CLOSED",
        "the held LAST_ACK socket to give up",
        timeout=budget,
        interval=0.01,
    )
    gone = lab.now()
    error = socket_error(server)
    time.sleep(0.1)
    lab.settle(quiet=0.1, timeout=1.0)

    trace = lab.trace(CLIENT_PORT, SERVER_PORT)
    fins = [s for s in trace if s.src == "server" and s.has("FIN")]
    times = [round(s.t - fins[0].t, 3) for s in fins]
    rto = times[1] if len(times) > 1 else 0.0
    gaps = [b - a for a, b in pairwise(times)]
    delta = counter_delta(before, lab.counters(), COUNTERS + ("TCPLossProbes",))
    return {
        "trace": trace.to_dicts(),
        "namespace_default": default,
        "last_ack_state": row.state if row else "CLOSED",
        "last_ack_timer": row.timer if row else "",
        "fin_transmissions": len(fins),
        "backoff": [2 ** round(math.log2(g / rto)) for g in gaps] if rto else [],
        "end_state": lab.state_of(SERVER_PORT, CLIENT_PORT),
        "socket_error": error or "",
        "rst_sent": any(s.src == "server" and s.has("RST") for s in trace),
        "predicted_fins": predict(retries2, rto)[0] if rto else 0,
        "limit_s": limit_s(retries2),
        "lifetime_s": round(gone - first_fin.t, 3),
        "first_rto_s": rto,
        "fin_times_s": times,
        "counters": delta,
    }


register(
    Experiment(
        name="held-last-ack",
        captures=True,
        summary="A LAST_ACK socket its application still holds: tcp_retries2 bounds its FIN's retries.",
        params=(
            Param("retries2", int, 2, "net.ipv4.tcp_retries2 set in the namespace", minimum=1, maximum=6),
            Param("family", int, 4, "IP version: 4 (127.0.0.1) or 6 (::1)", choices=(4, 6)),
        ),
        body=f"{__name__}:body",
        result=HeldLastAckResult,
        timeout=lambda p: predict(p["retries2"])[1] * 1.5 + 20,
        variants=({"retries2": 1}, {"retries2": 2}, {"retries2": 3}, {"retries2": 2, "family": 6}),
    )
)
