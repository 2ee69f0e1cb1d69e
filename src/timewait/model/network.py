"""The network between the two endpoints: per-direction loss, delay, duplication, reordering.

Every delay, extra copy included, is at most the maximum segment lifetime (MSL): that bound
is the assumption TIME_WAIT rests on. All random choices come from the scheduler's seeded
generator, and are drawn only for the features that are switched on, so that a run is the
same for the same seed and parameters.

Each transmission is recorded once, at its send time, as a :class:`timewait.trace.Segment`
(``note="dropped"`` if the network lost it). A copy the network makes is recorded when it
arrives, with ``note="duplicate"``, or ``note="old duplicate"`` for a copy held back on
purpose (see :class:`Hold`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional, Protocol, Union

from ..trace import Segment, Trace
from .endpoint import Packet

Matcher = Union[str, Callable[[Packet], bool]]
DISTRIBUTIONS = ("uniform", "exponential")


def _matches(match: Matcher, p: Packet) -> bool:
    if callable(match):
        return bool(match(p))
    return match == "any" or p.flags == match


def _probability(name, value):
    if not (0.0 <= value <= 1.0):
        raise ValueError(f"{name}: must be between 0 and 1, got {value}")


@dataclass
class Drop:
    """Drop the ``nth`` (1-based; a tuple for several) segment matching ``match`` (flags
    text such as ``"ACK"``, ``"any"``, or a predicate on a Packet)."""

    match: Matcher
    nth: tuple = (1,)

    def __post_init__(self):
        if isinstance(self.nth, int):
            self.nth = (self.nth,)
        if not self.nth or any(n < 1 for n in self.nth):
            raise ValueError(f"nth: must be 1 or more, got {self.nth}")


@dataclass
class Hold:
    """Deliver the segment normally and an extra copy ``after`` seconds later: a segment
    that wandered in the network, arriving as an old duplicate."""

    match: Matcher
    after: float
    nth: int = 1


@dataclass
class LinkConfig:
    """One direction of the network."""

    loss: float = 0.0  # probability that a segment is lost
    loss_match: Matcher = "any"  # which segments the probabilistic loss applies to
    drops: tuple = ()  # Drop rules: deterministic losses
    delay: float = 0.001  # base one-way delay, seconds
    jitter: float = 0.0  # scale of the random extra delay
    distribution: str = "uniform"  # of the extra delay: uniform(0, jitter) or exponential
    duplicate: float = 0.0  # probability that a segment arrives twice
    reorder: float = 0.0  # probability that a segment is held back by reorder_delay
    reorder_delay: float = 0.01
    holds: tuple = ()  # Hold rules

    def validate(self, msl: float, direction: str = "") -> None:
        pre = f"{direction}." if direction else ""
        _probability(pre + "loss", self.loss)
        _probability(pre + "duplicate", self.duplicate)
        _probability(pre + "reorder", self.reorder)
        if self.distribution not in DISTRIBUTIONS:
            raise ValueError(
                f"{pre}distribution: must be one of {', '.join(DISTRIBUTIONS)}, got {self.distribution!r}"
            )
        for name in ("delay", "jitter", "reorder_delay"):
            v = getattr(self, name)
            if not (0 <= v <= msl):
                raise ValueError(f"{pre}{name}: must be between 0 and the MSL ({msl} s), got {v}")
        if self.delay + self.reorder_delay > msl and self.reorder > 0:
            raise ValueError(
                f"{pre}reorder_delay: delay + reorder_delay must not exceed the "
                f"MSL ({msl} s), got {self.delay + self.reorder_delay}"
            )
        for h in self.holds:
            if not (0 < h.after <= msl):
                raise ValueError(f"{pre}hold: must be in (0, MSL={msl}] seconds, got {h.after}")


class Observer(Protocol):
    """Watches each segment the network hands to its receiver: ``arriving`` just before
    the receiver gets it, ``delivered`` just after (for instance, to see what a copy held
    in the network did to the connection it reached)."""

    def arriving(self, p: Packet) -> None: ...

    def delivered(self, p: Packet) -> None: ...


class Network:
    """Carries Packets between named endpoints through a :class:`Scheduler`: ``deliver``
    hands a Packet to its receiver, and an ``observer`` (optional) sees every delivery."""

    def __init__(
        self,
        scheduler,
        links: dict,
        msl: float,
        deliver: Callable[[Packet], None],
        ports: Optional[dict] = None,
        observer: Optional[Observer] = None,
    ):
        if not (msl > 0):
            raise ValueError(f"msl: must be > 0 seconds, got {msl}")
        self.scheduler, self.links, self.msl, self.deliver = scheduler, links, msl, deliver
        self.observer = observer
        for (src, dst), link in links.items():
            link.validate(msl, f"{src}->{dst}")
        self.ports = ports or {}
        self.segments: list[tuple[float, int, Segment]] = []  # (t, order, Segment)
        self._counts: dict[tuple, int] = {}  # (direction, rule index) -> segments matched so far
        self.last_activity = 0.0
        self.in_flight = 0

    # -- recording --
    def _record(self, t, p: Packet, note: str):
        ports = self.ports
        segments = self.segments
        flags = p.flags
        segments.append(
            (
                t,
                len(segments),
                Segment(
                    t,
                    p.src,
                    p.dst,
                    flags,
                    p.rel_seq,
                    p.rel_ack,
                    p.length,
                    p.seq,
                    p.ack if "ACK" in flags else None,
                    p.tsval,
                    p.tsecr,
                    note,
                    ports.get(p.src),
                    ports.get(p.dst),
                ),
            )
        )

    def trace(self) -> Trace:
        """Segments in time order (copies appear when they arrive)."""
        rows = sorted(self.segments)  # (t, order): order is unique, so Segments are never compared
        return Trace([r[2] for r in rows], ("client", "server"))

    def _count(self, key, rule, p) -> int:
        if not _matches(rule.match, p):
            return 0
        n = self._counts.get(key, 0) + 1
        self._counts[key] = n
        return n

    # -- sending --
    def send(self, p: Packet) -> None:
        sched = self.scheduler
        direction = (p.src, p.dst)
        link = self.links[direction]
        now = sched.now
        rng = sched.rng
        dropped = False
        if link.drops:
            for i, rule in enumerate(link.drops):
                if self._count((direction, "drop", i), rule, p) in rule.nth:
                    dropped = True
        if not dropped and link.loss > 0 and _matches(link.loss_match, p):
            dropped = rng.random() < link.loss
        self.last_activity = now
        if dropped:
            self._record(now, p, "dropped")
            return
        self._record(now, p, p.note)
        self._schedule(p, now + self._delay(link, rng), "")
        if link.duplicate > 0 and rng.random() < link.duplicate:
            self._schedule(p, now + self._delay(link, rng), "duplicate")
        if link.holds:
            for i, rule in enumerate(link.holds):
                if self._count((direction, "hold", i), rule, p) == rule.nth:
                    self._schedule(p, now + rule.after, "old duplicate")

    def _delay(self, link: LinkConfig, rng) -> float:
        d = link.delay
        if link.jitter > 0:
            if link.distribution == "uniform":
                d += rng.random() * link.jitter
            else:
                d += -link.jitter * math.log(1.0 - rng.random())
        if link.reorder > 0 and rng.random() < link.reorder:
            d += link.reorder_delay
        return min(d, self.msl)  # nothing outlives the MSL

    def _schedule(self, p: Packet, t: float, copy_note: str):
        self.in_flight += 1
        self.scheduler.at(t, self._arrive, p, copy_note)

    def _arrive(self, p: Packet, copy_note: str):
        self.in_flight -= 1
        now = self.scheduler.now
        self.last_activity = now
        if copy_note:
            p = p.copy(note=copy_note)
            self._record(now, p, copy_note)
        observer = self.observer
        if observer is None:
            self.deliver(p)
        else:
            observer.arriving(p)
            self.deliver(p)
            observer.delivered(p)
