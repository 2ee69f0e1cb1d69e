"""orphan-retries: how long an orphaned LAST_ACK socket retransmits a FIN nobody acknowledges.

The client closes, the server closes too (so its socket is orphaned: no file descriptor
holds it) and every ACK from the client is dropped. The server retransmits its FIN with
exponential backoff and, after a number of retries set by ``net.ipv4.tcp_orphan_retries``,
gives up silently (no RST).

What Linux 6.x really does (measured; net/ipv4/tcp_timer.c): the first retransmission is a
tail loss probe (TCPLossProbes), one RTO after the FIN; the retransmission timer then fires
at 2, 4, 8, 16... RTOs. Each RTO timeout checks the time since the first RTO retransmission
against ``(2**(retries+1) - 1) * 200 ms`` (TCP_RTO_MIN) and kills the socket once it is
reached. With the loopback RTO just above 200 ms, retries=1..3 give retries+2
retransmissions and a lifetime of ``2**(retries+2)`` RTOs, while retries=8 gives 9 and about
105 s (512 RTOs): the RTO's excess over 200 ms tips it one timeout earlier. :func:`predict`
computes it for any RTO. ``retries=0`` does not mean "no retries": tcp_orphan_retries()
turns 0 into 8 while the RTO is below its maximum.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from ..faults import Match
from ..observe import COUNTERS, counter_delta
from .base import Experiment, ExperimentResult, Param, register

SERVER_PORT = 5000
CLIENT_PORT = 40000
RTO_MIN_S = 0.2
RTO_MAX_S = 120.0


def effective_retries(retries: int) -> int:
    """What the kernel uses for an orphan whose RTO is below TCP_RTO_MAX: 0 means 8."""
    return retries or 8


def predict(retries: int, rto_s: float = 0.204) -> tuple:
    """``(fin_transmissions, lifetime_s)`` by the kernel's rule, for a steady RTO of ``rto_s``."""
    n = effective_retries(retries)
    # tcp_model_timeout(): doubling up to 9 retries, then RTO_MAX per extra retry
    limit = (2 ** (min(n, 9) + 1) - 1) * RTO_MIN_S + max(n - 9, 0) * RTO_MAX_S
    fins, t, interval = 3, 2 * rto_s, 2 * rto_s  # FIN, loss probe, first RTO retransmission
    stamp = t
    while True:
        t += interval
        interval = min(interval * 2, RTO_MAX_S)
        if t - stamp >= limit:
            return fins, t
        fins += 1


@dataclass
class OrphanRetriesResult(ExperimentResult):
    effective_retries: int = 0  # what the kernel used (0 means 8)
    fin_transmissions: int = 0  # the server's FINs: the first one plus its retransmissions
    loss_probes: int = 0  # tail loss probes among the retransmissions
    backoff: list = field(default_factory=list)  # gaps between FINs, in first-RTO units
    lifetime_rtos: int = 0  # lifetime in first-RTO units, to the nearest power of two
    rst_sent: bool = False  # did the dying socket tell the peer?
    lifetime_s: float = 0.0  # from the server's first FIN until its socket vanished
    first_rto_s: float = 0.0
    fin_times_s: list = field(default_factory=list)  # each FIN, seconds after the first
    counters: dict = field(default_factory=dict)

    SHOWN = ("effective_retries", "fin_transmissions", "loss_probes", "backoff", "lifetime_rtos",
             "rst_sent")


def _power_of_two(x: float) -> int:
    # timer-wheel slack makes long timers fire a little late; the doubling is what we show
    return 2 ** round(math.log2(x)) if x > 0 else 0


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
    budget = predict(retries)[1] * 1.5 + 5
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
    delta = counter_delta(before, lab.counters(), COUNTERS + ("TCPLossProbes",))
    return {
        "trace": trace.to_dicts(),
        "effective_retries": effective_retries(retries),
        "fin_transmissions": len(fins),
        "loss_probes": delta.get("TCPLossProbes", 0),
        "backoff": [_power_of_two(g / rto) for g in gaps] if rto else [],
        "lifetime_rtos": _power_of_two(lifetime / rto) if rto else 0,
        "rst_sent": any(s.src == "server" and s.has("RST") for s in trace),
        "lifetime_s": round(lifetime, 3),
        "first_rto_s": rto,
        "fin_times_s": times,
        "counters": delta,
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
    timeout=lambda p: predict(p["retries"])[1] * 1.5 + 20,
    variants=({"retries": 1}, {"retries": 2}, {"retries": 3}),
))
