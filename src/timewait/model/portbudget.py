"""The port budget: how many TIME_WAIT sockets a connection rate leaves behind.

A client that opens connections to one server address and port picks a local port for
each from ``ip_local_port_range``; the side that closes first keeps its 4-tuple in
TIME_WAIT. By Little's law the TIME_WAIT population is rate x TIME_WAIT length, so the
highest sustainable rate is ports / TIME_WAIT length; above it, the free ports run out
after ports / rate seconds and connect() fails with EADDRNOTAVAIL
("Cannot assign requested address").
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Optional

LINUX_PORT_RANGE = (32768, 60999)  # net.ipv4.ip_local_port_range default


@dataclass(frozen=True)
class PortBudget:
    ports: int  # local ports available for one destination
    time_wait: float  # seconds
    rate: float  # new connections per second to that destination
    population: float  # TIME_WAIT sockets in steady state (or when ports run out)
    ceiling_rate: float  # highest sustainable rate, connections per second
    time_to_exhaustion: Optional[float]  # seconds; None if the ports never run out

    @property
    def exhausted(self) -> bool:
        return self.time_to_exhaustion is not None

    def to_dict(self) -> dict:
        return asdict(self)

    def text(self) -> str:
        lines = [
            f"{self.ports} local ports, TIME_WAIT {self.time_wait:g} s, {self.rate:g} connections/s",
            f"TIME_WAIT population: {self.population:,.0f} sockets",
            f"ceiling rate: {self.ceiling_rate:,.1f} connections/s"
            if math.isfinite(self.ceiling_rate)
            else "ceiling rate: unlimited (no TIME_WAIT)",
        ]
        if self.exhausted:
            lines.append(
                f"ports run out after {self.time_to_exhaustion:,.2f} s: then connect() "
                f"fails with EADDRNOTAVAIL until TIME_WAIT sockets expire"
            )
        else:
            lines.append(f"ports never run out ({self.population / self.ports:.1%} in use)")
        return "\n".join(lines)


def port_budget(
    rate: float, time_wait: float = 60.0, port_range: tuple = LINUX_PORT_RANGE, destinations: int = 1
) -> PortBudget:
    """TIME_WAIT population, ceiling rate and time to exhaustion for ``rate`` new
    connections per second spread evenly over ``destinations`` (address, port) pairs."""
    try:
        low, high = (int(x) for x in port_range)
    except (TypeError, ValueError):
        raise ValueError(f"port_range: must be two port numbers (low, high), got {port_range!r}") from None
    if not (1 <= low <= high <= 65535):
        raise ValueError(f"port_range: must satisfy 1 <= low <= high <= 65535, got {low}-{high}")
    if not (rate >= 0 and math.isfinite(rate)):
        raise ValueError(f"rate: must be a finite number >= 0 connections per second, got {rate}")
    if not (time_wait >= 0 and math.isfinite(time_wait)):
        raise ValueError(f"time_wait: must be a finite number >= 0 seconds, got {time_wait}")
    if not (isinstance(destinations, int) and destinations >= 1):
        raise ValueError(f"destinations: must be a whole number >= 1, got {destinations}")
    ports = high - low + 1
    per_destination = rate / destinations
    ceiling = math.inf if time_wait == 0 else ports / time_wait * destinations
    if per_destination * time_wait > ports:
        exhaustion = ports / per_destination
        population = float(ports * destinations)
    else:
        exhaustion = None
        population = rate * time_wait
    return PortBudget(ports, float(time_wait), float(rate), population, ceiling, exhaustion)
