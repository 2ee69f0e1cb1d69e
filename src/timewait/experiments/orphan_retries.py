"""orphan-retries: how long an orphaned LAST_ACK socket retransmits a FIN nobody acknowledges.

The client closes, the server closes too (so its socket is orphaned: no file descriptor
holds it) and every ACK from the client is dropped. The server retransmits its FIN with
exponential backoff and, after a number of retries set by ``net.ipv4.tcp_orphan_retries``,
gives up silently (no RST).

Measured, every run: the namespace's own default of ``tcp_orphan_retries`` (read before the
experiment sets it), each FIN the server sends (counted in the capture), the tail loss
probes (``TCPLossProbes``), the server's socket in LAST_ACK with its retransmission timer
(from /proc/net/tcp and from ``ss -Htano state last-ack``), and, on the way there, the
CLOSE_WAIT and FIN_WAIT_2 rows ``ss`` lists. ``watch`` bounds the run: 0 waits for the
orphan to give up; a number of seconds stops watching then, alive or not.

What Linux 6.x does (measured on the course's machines; net/ipv4/tcp_timer.c): the first
retransmission is a tail loss probe, one RTO after the FIN; the retransmission timer then
fires at 2, 4, 8, 16... RTOs. Each RTO timeout checks the time since the first RTO
retransmission against ``(2**(retries+1) - 1) * 200 ms`` (TCP_RTO_MIN) and kills the socket
once it is reached. With the loopback RTO just above 200 ms, retries=1..3 give retries+3 FIN
transmissions and a lifetime of ``2**(retries+2)`` RTOs. :func:`predict` computes the rule
for any RTO.

``retries=0`` does not mean "no retries". From the kernel source, ``tcp_orphan_retries()``:
``if (retries == 0 && alive) retries = 8;`` ("alive": the RTO has not backed off to
TCP_RTO_MAX). A bounded run with ``retries=0, watch=8`` shows it live: the orphan is still in
LAST_ACK after 8 s with 7 FINs sent, more than any of retries=1..3 sends before dying.
Run to the end (``watch=0``, the slow test), it sent 10 FINs and was gone after 512 RTOs
(106.6 s at a 208 ms RTO), as the rule says for 8; at an RTO of exactly 200 ms the rule
would allow one timeout more: the RTO's excess over 200 ms tips it one timeout earlier.

``family=6`` runs it over IPv6, on ``::1``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from itertools import pairwise
from typing import Optional

from .. import observe
from ..faults import Match
from ..observe import COUNTERS, counter_delta
from .base import Experiment, ExperimentResult, Param, register, shown
from .common import client_closed_first

SERVER_PORT = 5000
CLIENT_PORT = 40000
RTO_MIN_S = 0.2
RTO_MAX_S = 120.0
SYSCTL = "net.ipv4.tcp_orphan_retries"
SS_FILTERS = ("close-wait", "fin-wait-2", "last-ack")


def effective_retries(retries: int) -> int:
    """The kernel's reading of the sysctl for an orphan whose RTO is below TCP_RTO_MAX,
    transcribed from ``tcp_orphan_retries()`` in net/ipv4/tcp_timer.c: 0 means 8."""
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


@dataclass(kw_only=True)
class OrphanRetriesResult(ExperimentResult):
    QUIET_OPTIONS = {"family": 4}  # an IPv4 run reads as before IPv6 was an option

    namespace_default: Optional[int] = shown()  # tcp_orphan_retries as a fresh namespace has it
    fin_transmissions: int = shown()  # the server's FINs in the capture: the first plus resends
    loss_probes: int = shown()  # tail loss probes among the retransmissions (TCPLossProbes)
    backoff: list = shown()  # gaps between FINs, in first-RTO units
    last_ack: str = shown()  # the server's socket while its FIN goes unanswered (/proc/net/tcp)
    last_ack_state: str
    last_ack_timer: str  # the kind of timer running on it
    last_ack_retransmits: int  # its retransmission count then (the loss probe not counted)
    fins_before_last_ack: int  # FINs captured before that look
    end_state: str = shown()  # "CLOSED" once it gave up, "LAST_ACK" if still there when watch ended
    end_retransmits: Optional[int]  # its retransmission count then, if still there
    lifetime_rtos: Optional[int] = shown()  # lifetime in first-RTO units (nearest power of two)
    rst_sent: bool = shown()  # did the dying socket tell the peer?
    ss_output: str  # `ss -Htano state ...` inside the namespace, timers normalised
    ss_rows: dict  # filter -> normalised rows
    ss_source: str  # "ss", or the fallback used when ss is missing
    watched_s: float  # from the server's first FIN until the run stopped watching
    lifetime_s: Optional[float]  # from the first FIN until the socket vanished
    first_rto_s: float
    fin_times_s: list  # each FIN, seconds after the first
    counters: dict


def _power_of_two(x: float) -> int:
    # timer-wheel slack makes long timers fire a little late; the doubling is what we show
    return 2 ** round(math.log2(x)) if x > 0 else 0


def _ss(lab, state: str, rows: dict) -> bool:
    """Run ``ss -Htano state STATE`` in the namespace (or read /proc/net/tcp without ss);
    returns whether ``ss`` itself answered."""
    found = observe.ss_rows(state)
    rows[state] = found if found is not None else observe.ss_like_rows(lab.sockets(), state)
    return found is not None


def body(lab, retries: int, watch: float, family: int = 4) -> dict:
    lab.use_family(family)
    default = int(lab.sysctl(SYSCTL))  # read before this experiment changes it
    lab.sysctl(SYSCTL, retries)
    lab.start_capture()
    server = client_closed_first(lab, SERVER_PORT, CLIENT_PORT)
    ss_rows: dict = {}
    lab.step("listing CLOSE_WAIT and FIN_WAIT_2 with ss")
    have_ss = _ss(lab, "close-wait", ss_rows) & _ss(lab, "fin-wait-2", ss_rows)

    lab.drop(Match(src_port=CLIENT_PORT, dst_port=SERVER_PORT, flags="ACK"), note="dropped")
    before = lab.counters()
    lab.step("server closes: an orphan in LAST_ACK")
    server.close()
    first_fin = lab.wait_for_segment(Match(src_port=SERVER_PORT, flags="FIN|ACK"), "the server's FIN")
    # Look at it after its first timeout retransmission (the third FIN), 2 RTOs before the next.
    lab.wait_for_segment(
        Match(src_port=SERVER_PORT, flags="FIN|ACK"), "the server's first timeout retransmission", nth=3
    )
    looked_at = lab.now()
    mine = [s for s in lab.sockets([SERVER_PORT]) if s.local[1] == SERVER_PORT and s.remote[1] == CLIENT_PORT]
    have_ss &= _ss(lab, "last-ack", ss_rows)
    row = mine[0] if mine else None

    lab.step("watching the orphan" + (f" for {watch:g} s" if watch else " until it gives up"))
    budget = predict(retries)[1] * 1.5 + 5
    deadline = first_fin.t + (watch if watch else budget)
    gone = None
    while lab.now() < deadline:
        if lab.state_of(SERVER_PORT, CLIENT_PORT) == "CLOSED":
            gone = lab.now()
            break
        time.sleep(0.01)
    if gone is None and not watch:
        raise TimeoutError(f"the orphan did not give up within {budget:g} s")
    end_row = (
        next(
            (
                s
                for s in lab.sockets([SERVER_PORT])
                if s.local[1] == SERVER_PORT and s.remote[1] == CLIENT_PORT
            ),
            None,
        )
        if gone is None
        else None
    )
    end_state = end_row.state if end_row else "CLOSED"
    stopped = gone if gone is not None else lab.now()
    time.sleep(0.1)
    lab.settle(quiet=0.1, timeout=1.0)

    trace = lab.trace(CLIENT_PORT, SERVER_PORT)
    fins = [s for s in trace if s.src == "server" and s.has("FIN")]
    offset = first_fin.t - fins[0].t  # trace times count from the SYN
    fins = [s for s in fins if s.t + offset <= stopped]
    times = [round(s.t - fins[0].t, 3) for s in fins]
    rto = times[1] if len(times) > 1 else 0.0
    gaps = [b - a for a, b in pairwise(times)]
    captured_before = sum(1 for s in fins if s.t + offset <= looked_at)
    delta = counter_delta(before, lab.counters(), COUNTERS + ("TCPLossProbes",))
    lifetime = round(gone - first_fin.t, 3) if gone is not None else None
    ss_lines = []
    for state in SS_FILTERS:
        ss_lines += [f"$ ss -Htano state {state}"] + (ss_rows[state] or ["(no rows)"])
    return {
        "trace": trace.to_dicts(),
        "namespace_default": default,
        "fin_transmissions": len(fins),
        "loss_probes": delta.get("TCPLossProbes", 0),
        "backoff": [_power_of_two(g / rto) for g in gaps] if rto else [],
        "last_ack": observe.ss_text([row]) if row else "(no socket)",
        "last_ack_state": row.state if row else "CLOSED",
        "last_ack_timer": row.timer if row else "",
        "last_ack_retransmits": row.retransmits if row else 0,
        "fins_before_last_ack": captured_before,
        "end_state": end_state,
        "end_retransmits": end_row.retransmits if end_row else None,
        "lifetime_rtos": _power_of_two(lifetime / rto) if rto and lifetime else None,
        "rst_sent": any(s.src == "server" and s.has("RST") for s in trace),
        "ss_output": "\n".join(ss_lines),
        "ss_rows": ss_rows,
        "ss_source": "ss"
        if have_ss
        else "ss is not installed (Debian package iproute2): rows read from /proc/net/tcp",
        "watched_s": round(stopped - first_fin.t, 3),
        "lifetime_s": lifetime,
        "first_rto_s": rto,
        "fin_times_s": times,
        "counters": delta,
    }


def _timeout(p: dict) -> float:
    return (p["watch"] if p["watch"] else predict(p["retries"])[1] * 1.5) + 20


register(
    Experiment(
        name="orphan-retries",
        captures=True,
        summary="An orphaned LAST_ACK socket whose FIN is never ACKed: how many retries, how long.",
        params=(
            Param(
                "retries", int, 2, "net.ipv4.tcp_orphan_retries set in the namespace", minimum=0, maximum=15
            ),
            Param(
                "watch",
                float,
                0.0,
                "seconds to watch the orphan after its first FIN (0: until it gives up)",
                minimum=0,
                maximum=150,
            ),
            Param("family", int, 4, "IP version: 4 (127.0.0.1) or 6 (::1)", choices=(4, 6)),
        ),
        body=f"{__name__}:body",
        result=OrphanRetriesResult,
        timeout=_timeout,
        variants=(
            {"retries": 1},
            {"retries": 2},
            {"retries": 3},
            {"retries": 0, "watch": 8},
            {"retries": 2, "family": 6},
        ),
    )
)
