"""The NAT port budget: how many connections per second a gateway's port range carries.

A gateway that translates connections to one address has P source ports towards one
destination (address and port). Each translated connection holds its port for as long as
the gateway's connection-tracking entry lives: the connection's own life, then conntrack's
TIME_WAIT after a FIN close (``nf_conntrack_tcp_timeout_time_wait``, 120 s by default) or
its CLOSE timeout after a reset. With ``life = duration + hold`` the highest sustainable
rate is ``P / life`` (Little's law). Above it a new connection finds no free port: the
gateway drops its SYN, and the client, which has ports to spare, sees its connect() time out.

:func:`simulate_nat` runs the gateway as a small event simulation on the model's
:class:`~timewait.model.scheduler.Scheduler`: connections arrive evenly spaced or as a
Poisson stream over a window, take a free port or fail, and give the port back when their
life ends (an entry that ends at the same instant as an arrival frees its port first). A
failed connection is counted once; the client's SYN retransmissions are not modelled, nor
Linux's take-over of a TIME_WAIT entry by a SYN whose sequence number is ahead of the old
connection's (``nf_nat_used_tuple_harder()``), so the simulation counts the connections that
get through without that help: the floor. Two closed forms check it:
:func:`even_arrivals_connected` (exact, for evenly spaced arrivals) and :func:`erlang_b`
(the long-run share of a Poisson stream that finds every port taken).

Pure Python, no numpy: it runs in a web page's Pyodide too.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import asdict, dataclass
from typing import Optional

from .scheduler import Scheduler

CONNTRACK_TIME_WAIT = 120.0  # s, nf_conntrack_tcp_timeout_time_wait default
ARRIVALS = ("even", "poisson")
MAX_ARRIVALS = 2_000_000  # what one simulation may run (about 2 s a million here)
_TIE = 1e-9  # s: an end and an arrival this close are the same instant


def _ports(ports) -> int:
    if not (isinstance(ports, int) and not isinstance(ports, bool) and 1 <= ports <= 65535):
        raise ValueError(f"ports: must be a whole number from 1 to 65535, got {ports!r}")
    return ports


def _seconds(name: str, value, *, allow_inf: bool = False, positive: bool = False) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        x = math.nan
    ok = (x > 0 if positive else x >= 0) and (math.isfinite(x) or (allow_inf and x == math.inf))
    if not ok:
        low = "> 0" if positive else ">= 0"
        extra = " (math.inf: kept open)" if allow_inf else ""
        raise ValueError(f"{name}: must be a finite number {low} seconds{extra}, got {value!r}")
    return x


def _rate(rate) -> float:
    try:
        x = float(rate)
    except (TypeError, ValueError):
        x = math.nan
    if not (x > 0 and math.isfinite(x)):
        raise ValueError(f"rate: must be a finite number > 0 connections per second, got {rate!r}")
    return x


def sustainable_rate(ports: int, duration: float, hold: float = CONNTRACK_TIME_WAIT) -> float:
    """The highest rate (connections per second) ``ports`` ports carry towards one
    destination when each mapping lives ``duration`` + ``hold`` seconds: ``ports / life``
    (infinite when the life is 0, 0 when connections stay open)."""
    ports = _ports(ports)
    life = _seconds("duration", duration, allow_inf=True) + _seconds("hold", hold)
    return math.inf if life == 0 else ports / life


def _arrival_count(rate: float, window: float) -> int:
    """How many of the evenly spaced arrival times k / rate (k = 0, 1, ...) fall before ``window``."""
    n = max(1, math.ceil(window * rate))
    while n > 1 and (n - 1) / rate >= window:
        n -= 1
    while n / rate < window:
        n += 1
    return n


def _check(ports, rate, duration, hold, window) -> tuple:
    ports = _ports(ports)
    rate = _rate(rate)
    duration = _seconds("duration", duration, allow_inf=True)
    hold = _seconds("hold", hold)
    window = _seconds("window", window, positive=True)
    if rate * window > MAX_ARRIVALS:
        raise ValueError(
            f"rate x window: must be at most {MAX_ARRIVALS:,} arrivals, got {rate * window:,.0f}"
        )
    return ports, rate, duration, hold, window


def even_arrivals_connected(
    ports: int, rate: float, duration: float, hold: float = CONNTRACK_TIME_WAIT, window: float = 600.0
) -> int:
    """How many of the connections that arrive every 1 / ``rate`` seconds over ``window``
    (the first at 0) get a port, exactly.

    A port given out at one arrival is free again at the arrival ``c = ceil(life x rate)``
    slots later (at least the next one). If ``c <= ports`` no arrival ever waits. Otherwise the
    first ``ports`` arrivals take one port each, and each port is taken again every ``c`` slots,
    by the arrival at which it frees: the ports free at different slots (their first slots
    differ by less than ``c``), so port ``i`` carries ``ceil((N - i) / c)`` of the ``N`` arrivals.
    """
    ports, rate, duration, hold, window = _check(ports, rate, duration, hold, window)
    n = _arrival_count(rate, window)
    life = duration + hold
    cycle = math.inf if life == math.inf else max(1, math.ceil(life * rate - _TIE * rate))
    if cycle <= ports:
        return n
    if cycle == math.inf:
        return min(ports, n)
    return sum(math.ceil((n - i) / cycle) for i in range(min(ports, n)))


def erlang_b(ports: int, offered_load: float) -> float:
    """The share of a Poisson stream of connections that finds all ``ports`` ports taken in
    the long run, when the offered load (rate x life, in mappings) is ``offered_load``:
    Erlang's loss formula, which holds whatever the distribution of the life."""
    ports = _ports(ports)
    try:
        a = float(offered_load)
    except (TypeError, ValueError):
        a = math.nan
    if not (a >= 0 and math.isfinite(a)):
        raise ValueError(f"offered_load: must be a finite number >= 0 (rate x life), got {offered_load!r}")
    b = 1.0
    for k in range(1, ports + 1):
        b = a * b / (k + a * b)
    return b


@dataclass(frozen=True)
class NatRun:
    """One simulated window of connections through a gateway's ports towards one destination."""

    ports: int
    rate: float  # connections per second offered
    duration: float  # s, each connection's own life (math.inf: kept open)
    hold: float  # s, conntrack's timeout after the close (TIME_WAIT or CLOSE)
    window: float  # s
    arrivals: str  # "even" or "poisson"
    seed: int
    offered: int  # connections that arrived in the window
    connected: int  # got a port
    failed: int  # found every port taken: their SYNs were dropped
    first_failure: Optional[float]  # s, when the first connection failed; None if none did
    peak_in_use: int  # most ports held at once
    sustainable_rate: float  # ports / (duration + hold)

    @property
    def failed_share(self) -> float:
        return self.failed / self.offered if self.offered else 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    def text(self) -> str:
        ceiling = (
            "unlimited"
            if math.isinf(self.sustainable_rate)
            else f"{self.sustainable_rate:,.3g} connections/s"
        )
        lines = [
            f"{self.ports} ports, mapping held {self.duration:g} + {self.hold:g} s, "
            f"{self.rate:g} connections/s ({self.arrivals}) for {self.window:g} s",
            f"sustainable rate: {ceiling}",
            f"connected: {self.connected} of {self.offered}, failed: {self.failed} ({self.failed_share:.1%})",
        ]
        if self.first_failure is not None:
            lines.append(f"first failure after {self.first_failure:,.2f} s")
        return "\n".join(lines)


def simulate_nat(
    ports: int,
    rate: float,
    duration: float,
    hold: float = CONNTRACK_TIME_WAIT,
    window: float = 600.0,
    arrivals: str = "even",
    seed: int = 0,
) -> NatRun:
    """Connections arrive at ``rate`` per second for ``window`` seconds, evenly spaced (the
    first at 0) or as a Poisson stream (seeded); each takes a free port for ``duration`` +
    ``hold`` seconds, or fails when none is free."""
    ports, rate, duration, hold, window = _check(ports, rate, duration, hold, window)
    if arrivals not in ARRIVALS:
        raise ValueError(f"arrivals: must be one of {', '.join(ARRIVALS)}, got {arrivals!r}")
    life = duration + hold
    sched = Scheduler(seed)
    ends: list[float] = []  # a heap: when each held port is free again
    tally = {"offered": 0, "connected": 0, "peak": 0}
    failures: list[float] = []

    def arrive(k: int) -> None:
        now = sched.now
        while ends and ends[0] <= now + _TIE:
            heapq.heappop(ends)
        tally["offered"] += 1
        if len(ends) < ports:
            heapq.heappush(ends, now + life)
            tally["connected"] += 1
            tally["peak"] = max(tally["peak"], len(ends))
        else:
            failures.append(now)
        # even arrivals at k / rate, not a running sum, so that their times do not drift
        t = (k + 1) / rate if arrivals == "even" else now + sched.rng.expovariate(rate)
        if t < window:
            sched.at(t, arrive, k + 1)

    sched.at(0.0 if arrivals == "even" else sched.rng.expovariate(rate), arrive, 0)
    sched.run(until=window, max_events=MAX_ARRIVALS + 1)
    return NatRun(
        ports=ports,
        rate=rate,
        duration=duration,
        hold=hold,
        window=window,
        arrivals=arrivals,
        seed=seed,
        offered=tally["offered"],
        connected=tally["connected"],
        failed=len(failures),
        first_failure=failures[0] if failures else None,
        peak_in_use=tally["peak"],
        sustainable_rate=math.inf if life == 0 else ports / life,
    )


def sustainable_rate_sweep(
    port_counts=(1024, 4096, 16384, 28232, 64512),
    holds=(CONNTRACK_TIME_WAIT, 30.0),
    duration: float = 0.0,
) -> list:
    """One row per (hold, port count): the sustainable rate, connections per second."""
    rows = []
    for hold in holds:
        for ports in port_counts:
            rows.append(
                dict(
                    ports=ports,
                    hold=float(hold),
                    duration=float(duration),
                    rate=sustainable_rate(ports, duration, hold),
                )
            )
    return rows
