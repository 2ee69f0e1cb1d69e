"""Benchmarks of the model: widget latency, Monte Carlo throughput, event engine vs SimPy
(the SimPy side is benchmarks/simpy_model.py).

Run: PYTHONPATH=src .venv/bin/python benchmarks/bench_model.py [--quick]
Prints medians, 95th percentiles and ratios; goals are printed beside the figures.
"""

from __future__ import annotations

import argparse
import io
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from timewait.model import scenarios, simulate
from timewait.model.sweeps import old_duplicate_sweep, reset_sweep


def percentiles(samples):
    s = sorted(samples)
    return statistics.median(s), s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))]


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def bench_widget(n):
    from timewait.widgets import sequence_explorer

    warnings.simplefilter("ignore")
    e = sequence_explorer()
    values = [0.0, 2.0, 1.0, 0.5]
    total, model, mpl = [], [], []
    for i in range(n):
        t0 = time.perf_counter()
        e.time_wait_msl.value = values[i % len(values)]  # triggers update(): model + redraw
        total.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        simulate(e.scenario.value, **e.params())
        model.append(time.perf_counter() - t0)
        if i < 10:  # the previous renderer, for comparison: matplotlib figure + PNG
            t0 = time.perf_counter()
            png = _png(e.figure())
            mpl.append(time.perf_counter() - t0)
    (m, p95), (mm, mp95) = percentiles(total), percentiles(model)
    print(
        f"widget update (model + SVG redraw): median {m * 1e3:.1f} ms, p95 {p95 * 1e3:.1f} ms "
        f"(goal: median <= 50 ms); {len(e.diagram.value) / 1e3:.0f} kB of SVG to the browser"
    )
    print(f"  of which the model:                median {mm * 1e3:.2f} ms, p95 {mp95 * 1e3:.2f} ms")
    print(
        f"  (the same result drawn with matplotlib + PNG, the renderer before: median "
        f"{statistics.median(mpl) * 1e3:.0f} ms, {len(png) / 1e3:.0f} kB)"
    )


def bench_monte_carlo(trials):
    r = reset_sweep(final_ack_loss=(0.1, 0.3, 0.5), time_wait_msl=(0, 1, 2), trials=trials)
    rate_reset = r.trials_total / r.seconds
    d = old_duplicate_sweep(time_wait_msl=(0, 0.5, 1, 2), isn=("fixed", "clock", "random"), trials=trials)
    rate_dup = d.trials_total / d.seconds
    print(
        f"Monte Carlo, P(peer reset):     {rate_reset:,.0f} simulated closes/s "
        f"({r.trials_total:,} in {r.seconds:.2f} s; goal >= 1e6)"
    )
    print(
        f"Monte Carlo, P(old duplicate):  {rate_dup:,.0f} simulated closes/s "
        f"({d.trials_total:,} in {d.seconds:.2f} s; goal >= 1e6)"
    )
    t0 = time.perf_counter()
    n_event = 300
    for seed in range(n_event):
        simulate("lost-final-ack", seed=seed)
    rate_event = n_event / (time.perf_counter() - t0)
    print(f"  (event engine, one close at a time: {rate_event:,.0f} closes/s)")


def _timed_runs(seeds, **params):
    t0 = time.perf_counter()
    for seed in seeds:
        simulate("lost-final-ack", seed=seed, **params)
    return (time.perf_counter() - t0) / len(seeds)


def bench_engine_vs_simpy(n):
    """The same scenario, the same shared model code, two engines; alternated in one run so
    that machine load hits both alike."""
    from simpy_model import on_simpy

    params = dict(time_wait_msl=0, loss=0.05, jitter=0.002)
    seeds = list(range(n // 5))
    _timed_runs(seeds[:20], **params)  # warm up
    with on_simpy():
        _timed_runs(seeds[:20], **params)
    ours, theirs = [], []
    for _ in range(5):
        ours.append(_timed_runs(seeds, **params))
        with on_simpy():
            theirs.append(_timed_runs(seeds, **params))
    ours, theirs = statistics.median(ours), statistics.median(theirs)
    same, outcomes = 0, {}
    for seed in seeds:
        a = simulate("lost-final-ack", seed=seed, **params)
        with on_simpy():
            b = simulate("lost-final-ack", seed=seed, **params)
        same += a.to_dict() == b.to_dict()
        outcomes[a.outcome] = outcomes.get(a.outcome, 0) + 1
    # events our engine runs per scenario run
    counted = []
    original_run = scenarios.Simulation.run

    def counting_run(self, until=float("inf")):
        original_run(self, until)
        counted.append(self.sched.events_run)

    scenarios.Simulation.run = counting_run
    try:
        for seed in seeds:
            simulate("lost-final-ack", seed=seed, **params)
    finally:
        scenarios.Simulation.run = original_run
    events = statistics.mean(counted)
    print(
        "lost-final-ack (loss 0.05, jitter 2 ms, TIME_WAIT 0; outcomes "
        + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
        + "):"
    )
    print("  both sides run the same Endpoint, Network and scenario code; ours drives it with")
    print("  timewait.model.scheduler (heap of callbacks), SimPy with processes (one per")
    print("  endpoint's timers, interrupted when its deadline moves; one per segment in flight;")
    print("  one per scheduled application action) -- benchmarks/simpy_model.py")
    print(
        f"  ours {ours * 1e6:.0f} us/run, SimPy {theirs * 1e6:.0f} us/run: ratio "
        f"{theirs / ours:.1f}x (goal >= 10x); identical results (trace, timeline, outcome) "
        f"for {same}/{len(seeds)} seeds; {events:.1f} engine events per run (ours)"
    )
    return events, ours, theirs


def bench_engines_alone(events_per_run, ours_run, simpy_run):
    """The engines without the model, in two shapes: a chain of timers (each event schedules
    the next, so the queue stays short, as in a scenario run), and 100,000 timers scheduled
    up front (a long queue)."""
    import simpy

    from timewait.model.scheduler import Scheduler

    count = 100_000

    def noop(*_):
        pass

    def ours_chain():
        s = Scheduler(0)
        left = [count]

        def tick():
            left[0] -= 1
            if left[0]:
                s.at(s.now + 1e-3, tick)

        s.at(0.0, tick)
        s.run()

    def simpy_chain():  # the idiomatic form: a process that sleeps, wakes, sleeps again
        env = simpy.Environment()

        def sleeper():
            for _ in range(count):
                yield env.timeout(1e-3)
                noop()

        env.process(sleeper())
        env.run()

    def ours_upfront():
        s = Scheduler(0)
        at = s.at
        for i in range(count):
            at(i * 1e-3, noop)
        s.run()

    def simpy_upfront():  # SimPy's cheapest scheduled callback: a Timeout's callback
        env = simpy.Environment()
        timeout = env.timeout
        for i in range(count):
            timeout(i * 1e-3).callbacks.append(noop)
        env.run()

    times = {f: [] for f in (ours_chain, simpy_chain, ours_upfront, simpy_upfront)}
    for _ in range(3):
        for f in times:
            t0 = time.perf_counter()
            f()
            times[f].append(time.perf_counter() - t0)
    oc, sc, ou, su = (min(v) for v in times.values())
    print(f"engines alone, {count:,} timed events, best of 3:")
    print(
        f"  a chain (our callback rescheduling itself / a SimPy process sleeping in a loop): "
        f"ours {oc * 1e3:.0f} ms ({oc / count * 1e6:.2f} us/event), SimPy {sc * 1e3:.0f} ms: "
        f"ratio {sc / oc:.1f}x"
    )
    print(
        f"  all scheduled up front (Scheduler.at / a SimPy Timeout with a callback): "
        f"ours {ou * 1e3:.0f} ms, SimPy {su * 1e3:.0f} ms: ratio {su / ou:.1f}x"
    )
    engine = events_per_run * oc / count
    print(
        f"  at ~{events_per_run:.0f} events per scenario run, our engine's own share of a run "
        f"is about {engine * 1e6:.0f} us of {ours_run * 1e6:.0f} us; the rest is the shared "
        f"model code, so even an engine that cost nothing would make the scenario ratio at "
        f"most {simpy_run / max(ours_run - engine, 1e-9):.1f}x"
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    a = parser.parse_args()
    print(
        f"Python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}, "
        f"{platform.processor() or platform.system()}"
    )
    bench_widget(10 if a.quick else 40)
    bench_monte_carlo(100_000 if a.quick else 1_000_000)
    bench_engines_alone(*bench_engine_vs_simpy(100 if a.quick else 500))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
