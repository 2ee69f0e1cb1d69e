"""Run the given make targets one after another, then print each one's wall time and the total.

Every stage runs even if an earlier one failed, so one report shows everything that is wrong;
the exit status is non-zero if any stage failed.
"""
import subprocess
import sys
import time

stages = sys.argv[1:]
results = []
start = time.monotonic()
for stage in stages:
    t0 = time.monotonic()
    print(f"\n=== make {stage} ===", flush=True)
    code = subprocess.call(["make", "--no-print-directory", stage])
    results.append((stage, code, time.monotonic() - t0))
total = time.monotonic() - start
print("\n=== summary ===")
for stage, code, seconds in results:
    print(f"{stage:22s} {'ok' if code == 0 else f'FAILED (exit {code})':18s} {seconds:7.1f} s")
print(f"make test: total wall time {total:.1f} s ({total / 60:.1f} min)")
sys.exit(0 if all(code == 0 for _, code, _ in results) else 1)
