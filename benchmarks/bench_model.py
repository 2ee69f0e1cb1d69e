"""Benchmarks of the model: widget latency, Monte Carlo throughput, event engine vs SimPy.

Run: PYTHONPATH=src .venv/bin/python benchmarks/bench_model.py [--quick]
Prints medians, 95th percentiles and ratios; goals are printed beside the figures.
"""
from __future__ import annotations

import argparse
import platform
import random
import statistics
import time
import warnings

import numpy as np

from timewait.model import scenarios, simulate
from timewait.model.sweeps import old_duplicate_sweep, reset_sweep


def percentiles(samples):
    s = sorted(samples)
    return statistics.median(s), s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))]


def bench_widget(n):
    from timewait.widgets import sequence_explorer
    warnings.simplefilter("ignore")
    e = sequence_explorer()
    values = [0.0, 2.0, 1.0, 0.5]
    total, model = [], []
    for i in range(n):
        t0 = time.perf_counter()
        e.time_wait_msl.value = values[i % len(values)]  # triggers update(): model + redraw
        total.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        simulate(e.scenario.value, **e.params())
        model.append(time.perf_counter() - t0)
    (m, p95), (mm, mp95) = percentiles(total), percentiles(model)
    print(f"widget update (model + redraw): median {m * 1e3:.1f} ms, p95 {p95 * 1e3:.1f} ms "
          f"(goal: median <= 50 ms)")
    print(f"  of which the model:            median {mm * 1e3:.2f} ms, p95 {mp95 * 1e3:.2f} ms")


def bench_monte_carlo(trials):
    r = reset_sweep(final_ack_loss=(0.1, 0.3, 0.5), time_wait_msl=(0, 1, 2), trials=trials)
    rate_reset = r.trials_total / r.seconds
    d = old_duplicate_sweep(time_wait_msl=(0, 0.5, 1, 2), isn=("fixed", "clock", "random"),
                            trials=trials)
    rate_dup = d.trials_total / d.seconds
    print(f"Monte Carlo, P(peer reset):     {rate_reset:,.0f} simulated closes/s "
          f"({r.trials_total:,} in {r.seconds:.2f} s; goal >= 1e6)")
    print(f"Monte Carlo, P(old duplicate):  {rate_dup:,.0f} simulated closes/s "
          f"({d.trials_total:,} in {d.seconds:.2f} s; goal >= 1e6)")
    t0 = time.perf_counter()
    n_event = 300
    for seed in range(n_event):
        simulate("lost-final-ack", seed=seed)
    rate_event = n_event / (time.perf_counter() - t0)
    print(f"  (event engine, one close at a time: {rate_event:,.0f} closes/s)")


class SimPyScheduler:
    """The Scheduler interface on SimPy: each scheduled call is a SimPy process."""

    def __init__(self, seed=0):
        import simpy
        self.env = simpy.Environment()
        self.rng = random.Random(seed)
        self.events_run = 0

    @property
    def now(self):
        return self.env.now

    class _Handle:
        __slots__ = ("cancelled",)

        def __init__(self):
            self.cancelled = False

        def cancel(self):
            self.cancelled = True

    def at(self, t, fn, *args):
        handle = self._Handle()

        def proc():
            yield self.env.timeout(t - self.env.now)
            if not handle.cancelled:
                self.events_run += 1
                fn(*args)
        self.env.process(proc())
        return handle

    def after(self, delay, fn, *args):
        return self.at(self.env.now + delay, fn, *args)

    def run(self, until=float("inf")):
        self.env.run(None if until == float("inf") else until)


def _timed_runs(n, **params):
    t0 = time.perf_counter()
    last = None
    for seed in range(n):
        last = simulate("lost-final-ack", seed=seed, **params)
    return (time.perf_counter() - t0) / n, last


def bench_engine_vs_simpy(n):
    params = dict(time_wait_msl=0, loss=0.05, jitter=0.002)
    original = scenarios.Scheduler
    ours, theirs = [], []
    _timed_runs(20, **params)  # warm up
    for _ in range(5):  # alternate, so that machine load hits both alike
        t, ours_result = _timed_runs(n // 5, **params)
        ours.append(t)
        scenarios.Scheduler = SimPyScheduler
        try:
            t, simpy_result = _timed_runs(n // 5, **params)
            theirs.append(t)
        finally:
            scenarios.Scheduler = original
    ours, theirs = statistics.median(ours), statistics.median(theirs)
    same = ours_result.trace.to_dicts() == simpy_result.trace.to_dicts()
    print(f"lost-final-ack scenario, our engine: {ours * 1e6:.0f} us/run; same model on SimPy: "
          f"{theirs * 1e6:.0f} us/run; ratio {theirs / ours:.1f}x (goal >= 10x); "
          f"identical traces: {same}")
    # The engines alone: 100k timer events that do nothing.
    from timewait.model.scheduler import Scheduler
    events = 100_000
    for name, cls in (("ours", Scheduler), ("simpy", SimPyScheduler)):
        s = cls(0)
        t0 = time.perf_counter()
        for i in range(events):
            s.at(i * 1e-3, int)
        s.run()
        dt = time.perf_counter() - t0
        if name == "ours":
            ours_ev = dt
        else:
            simpy_ev = dt
    print(f"engines alone, {events:,} events: ours {ours_ev * 1e3:.0f} ms, SimPy "
          f"{simpy_ev * 1e3:.0f} ms, ratio {simpy_ev / ours_ev:.1f}x")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    a = parser.parse_args()
    print(f"Python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}, "
          f"{platform.processor() or platform.system()}")
    bench_widget(10 if a.quick else 40)
    bench_monte_carlo(100_000 if a.quick else 1_000_000)
    bench_engine_vs_simpy(100 if a.quick else 500)


if __name__ == "__main__":
    main()
