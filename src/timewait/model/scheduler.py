"""A small deterministic discrete-event engine.

Events run in time order; events at the same time run in the order they were scheduled,
so that a run depends only on its inputs and its seed. The engine owns the run's random
generator, so every random choice of a run (losses, delays, ISNs) comes from one seed.

The queue is a binary heap (:mod:`heapq`) of plain tuples ``(t, order, timer, fn, args)``:
``order`` is a running count that keeps same-time events first-in first-out and means the
heap never compares two timers. A cancelled timer stays in the heap and is skipped when it
comes up, which is cheaper than removing it.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable

_INF = float("inf")


class Timer:
    """Handle returned by :meth:`Scheduler.at`; :meth:`cancel` stops it from running."""

    __slots__ = ("t", "cancelled")

    def __init__(self, t: float):
        self.t = t
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Scheduler:
    def __init__(self, seed: int = 0):
        self.now = 0.0
        self.rng = random.Random(seed)
        self._queue: list[tuple[float, int, Timer, Callable, tuple]] = []  # a heap
        self._count = 0  # tie-breaker: FIFO among events at the same time
        self.events_run = 0

    def at(self, t: float, fn: Callable, *args) -> Timer:
        if t < self.now:
            raise ValueError(f"t: must not be before now ({self.now}), got {t}")
        timer = Timer(t)
        self._count = n = self._count + 1
        heapq.heappush(self._queue, (t, n, timer, fn, args))
        return timer

    def after(self, delay: float, fn: Callable, *args) -> Timer:
        if delay < 0:
            raise ValueError(f"delay: must be >= 0, got {delay}")
        return self.at(self.now + delay, fn, *args)

    def pending(self) -> int:
        return sum(1 for item in self._queue if not item[2].cancelled)

    def run(self, until: float = _INF, max_events: int = 1_000_000) -> None:
        """Run events up to time ``until`` (inclusive); ``max_events`` guards against loops."""
        queue = self._queue
        pop = heapq.heappop
        n = self.events_run
        try:
            while queue and queue[0][0] <= until:
                t, _, timer, fn, args = pop(queue)
                if timer.cancelled:
                    continue
                self.now = t
                n += 1
                if n > max_events:
                    raise RuntimeError(f"max_events: run exceeded {max_events} events at t={t}")
                fn(*args)
        finally:
            self.events_run = n
        if until != _INF and until > self.now:
            self.now = until
