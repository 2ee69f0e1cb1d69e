"""Wall time of every registered experiment's default run, against the 60 s notebook budget.

    PYTHONPATH=src python benchmarks/bench_experiments.py [--with-slow]

Each experiment runs once with its default parameters (live on a full-tier machine, else
from its recording). ``--with-slow`` also times orphan-retries with retries=8 (the kernel's
default, about 105 s), reported apart from the total.
"""

from __future__ import annotations

import argparse
import sys
import time

from timewait.experiments import REGISTRY, run
from timewait.tiers import detect_tier

BUDGET_S = 60.0
SLOW = {"orphan-retries": {"retries": 8}}


def timed(name: str, **params) -> tuple:
    start = time.monotonic()
    try:
        run(name, **params)
        status = "ok"
    except Exception as exc:  # a benchmark reports failures and carries on
        status = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0]}"
    return time.monotonic() - start, status


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--with-slow", action="store_true", help="also time orphan-retries with retries=8 (outside the total)"
    )
    args = parser.parse_args(argv)
    print(f"tier: {detect_tier()}")
    total = 0.0
    failed = False
    for name in sorted(REGISTRY):
        seconds, status = timed(name)
        total += seconds
        failed |= status != "ok"
        print(f"{name:28s} {seconds:7.2f} s  {status}")
    verdict = "under" if total < BUDGET_S else "OVER"
    print(f"{'total':28s} {total:7.2f} s  ({verdict} the {BUDGET_S:g} s budget)")
    if args.with_slow:
        for name, params in SLOW.items():
            if name in REGISTRY:
                seconds, status = timed(name, **params)
                opts = ", ".join(f"{k}={v}" for k, v in params.items())
                print(f"{name} ({opts}): {seconds:.2f} s  {status}  (not in the total)")
    return 1 if failed or total >= BUDGET_S else 0


if __name__ == "__main__":
    sys.exit(main())
