"""orphan-retries: how long an orphaned LAST_ACK socket retransmits a FIN nobody acknowledges.

The client closes, the server closes too (so its socket is orphaned: no file descriptor
holds it) and every ACK from the client is dropped. The server retransmits its FIN with
exponential backoff and gives up after ``net.ipv4.tcp_orphan_retries`` retransmissions,
silently (no RST).

Linux's timer (net/ipv4/tcp_timer.c) counts time, not segments: the socket dies at the first
retransmission timeout at which the time since the first FIN reaches
``(2**(retries+1) - 1) * 200 ms`` (TCP_RTO_MIN). With the loopback RTO just above 200 ms
that is ``retries`` retransmissions and a lifetime of about ``(2**(retries+1) - 1) * RTO``.
``retries=0`` does not mean "no retries": tcp_orphan_retries() turns 0 into 8 while the
RTO is below its maximum (about 100 s on loopback).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..faults import Match
from ..observe import counter_delta
from .base import Experiment, ExperimentResult, Param, register

SERVER_PORT = 5000
CLIENT_PORT = 40000
RTO_MIN_S = 0.2


def effective_retries(retries: int) -> int:
    """What the kernel uses for an orphan whose RTO is below TCP_RTO_MAX: 0 means 8."""
    return retries or 8


def expected_lifetime_s(retries: int, rto_s: float = RTO_MIN_S) -> float:
    """Time from the first FIN to the socket's end: (2**(n+1) - 1) RTOs, n retransmissions."""
    return (2 ** (effective_retries(retries) + 1) - 1) * rto_s


@dataclass
class OrphanRetriesResult(ExperimentResult):
    effective_retries: int = 0  # what the kernel used (0 means 8)
    fin_transmissions: int = 0  # the server's FINs: the first one plus its retransmissions
    backoff: list = field(default_factory=list)  # gaps between FINs, in first-RTO units
    gone_after_rtos: int = 0  # lifetime in first-RTO units, rounded
    rst_sent: bool = False  # did the dying socket tell the peer?
    lifetime_s: float = 0.0  # from the server's first FIN until its socket vanished
    first_rto_s: float = 0.0
    fin_times_s: list = field(default_factory=list)  # each FIN, seconds after the first
    counters: dict = field(default_factory=dict)

    SHOWN = ("effective_retries", "fin_transmissions", "backoff", "gone_after_rtos", "rst_sent")


def body(lab, retries: int) -> dict:
    lab.start_capture()
    listener = lab.listener(SERVER_PORT)
    client = lab.connect(SERVER_PORT, src_port=CLIENT_PORT)
    server, _ = listener.accept()
    lab.track(server)
    listener.close()
    lab.step("client closes")
    client.close()
    server.settimeout(5)
    assert server.recv(100) == b""
    lab.wait_for(lambda: lab.state_of(CLIENT_PORT, SERVER_PORT) == "FIN_WAIT_2",
                 "the client to reach FIN_WAIT_2")

    lab.drop(Match(src_port=CLIENT_PORT, dst_port=SERVER_PORT, flags="ACK"), note="dropped")
    before = lab.counters()
    lab.step("server closes: an orphan in LAST_ACK")
    server.close()
    first_fin = lab.wait_for_segment(Match(src_port=SERVER_PORT, flags="FIN|ACK"),
                                     "the server's FIN")
    budget = expected_lifetime_s(retries) * 1.5 + 5
    lab.wait_for(lambda: lab.state_of(SERVER_PORT, CLIENT_PORT) == "CLOSED",
                 "the orphan to give up", timeout=budget, interval=0.01)
    gone = lab.now()
    time.sleep(0.1)

    trace = lab.trace(CLIENT_PORT, SERVER_PORT)
    fins = [s for s in trace if s.src == "server" and s.has("FIN")]
    times = [round(s.t - fins[0].t, 3) for s in fins]
    rto = times[1] if len(times) > 1 else 0.0
    gaps = [b - a for a, b in zip(times, times[1:])]
    lifetime = gone - first_fin.t
    return {
        "trace": trace.to_dicts(),
        "effective_retries": effective_retries(retries),
        "fin_transmissions": len(fins),
        "backoff": [round(g / rto) for g in gaps] if rto else [],
        "gone_after_rtos": round(lifetime / rto) if rto else 0,
        "rst_sent": any(s.src == "server" and s.has("RST") for s in trace),
        "lifetime_s": round(lifetime, 3),
        "first_rto_s": rto,
        "fin_times_s": times,
        "counters": counter_delta(before, lab.counters()),
    }


register(Experiment(
    name="orphan-retries",
    summary="An orphaned LAST_ACK socket whose FIN is never ACKed: how many retries, how long.",
    params=(
        Param("retries", int, 2, "net.ipv4.tcp_orphan_retries (0 means the kernel's 8)",
              minimum=0, maximum=15),
    ),
    body=f"{__name__}:body",
    result=OrphanRetriesResult,
    sysctls=lambda p: {"net.ipv4.tcp_orphan_retries": p["retries"]},
    timeout=lambda p: expected_lifetime_s(p["retries"]) * 1.5 + 20,
    variants=({"retries": 1}, {"retries": 2}, {"retries": 3}),
))
