"""Run make targets, some side by side, then print each one's wall time, CPU time and the total.

Each argument is a lane: make targets joined by ``+`` run one after another; lanes run side by
side. A target may carry make variables after it, separated by spaces::

    python scripts/run_checks.py test-lib "test-book+test-site" "test-labs-repeat RUNS=3"

A stage's output is kept and printed whole when it ends, so parallel stages do not interleave.
Every stage runs even if an earlier one failed, so one report shows everything that is wrong;
the exit status is non-zero if any stage failed. CPU time is the user+system time of the
stage's make and every process it waited for. The stages share one scratch directory for the
run: each lab's otter assign output is built once (TIMEWAIT_LABS_ASSIGNED, labs/check_labs.py).
"""

import os
import subprocess
import sys
import tempfile
import threading
import time

start = time.monotonic()
print_lock = threading.Lock()
results = []  # (order, label, status, started, wall, cpu)


def say(text: str) -> None:
    with print_lock:
        print(text, flush=True)


def run_stage(order: int, stage: str, logdir: str) -> None:
    target, *variables = stage.split()
    label = stage
    log_path = os.path.join(logdir, f"{order:02d}-{target}.log")
    t0 = time.monotonic()
    say(f"--- {label}: started at {t0 - start:.0f} s")
    with open(log_path, "w+b") as log:
        proc = subprocess.Popen(
            ["make", "--no-print-directory", target, *variables], stdout=log, stderr=subprocess.STDOUT
        )
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - t0
        cpu = usage.ru_utime + usage.ru_stime
        log.seek(0)
        output = log.read().decode(errors="replace")
    with print_lock:
        print(
            f"\n=== make {label} ({'ok' if proc.returncode == 0 else 'FAILED'}, {wall:.0f} s) ===", flush=True
        )
        sys.stdout.write(output if output.endswith("\n") or not output else output + "\n")
        sys.stdout.flush()
        results.append((order, label, proc.returncode, t0 - start, wall, cpu))


def run_lane(lane: list, logdir: str) -> None:
    for order, stage in lane:
        run_stage(order, stage, logdir)


def main(argv: list) -> int:
    lanes, order = [], 0
    for arg in argv:
        lane = []
        for stage in arg.split("+"):
            if not stage.strip():
                sys.exit(f"run_checks.py: empty stage in {arg!r}")
            lane.append((order, stage.strip()))
            order += 1
        lanes.append(lane)
    if not lanes:
        sys.exit("run_checks.py: name at least one make target")
    with tempfile.TemporaryDirectory(prefix="timewait-checks.") as logdir:
        os.environ.setdefault("TIMEWAIT_LABS_ASSIGNED", os.path.join(logdir, "labs-assigned"))
        threads = [threading.Thread(target=run_lane, args=(lane, logdir)) for lane in lanes]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    total = time.monotonic() - start
    print("\n=== summary ===")
    print(f"{'stage':30s} {'result':18s} {'start':>7s} {'wall':>8s} {'CPU':>8s}")
    for _, label, code, started, wall, cpu in sorted(results):
        print(
            f"{label:30s} {'ok' if code == 0 else f'FAILED (exit {code})':18s} "
            f"{started:6.0f}s {wall:7.1f}s {cpu:7.1f}s"
        )
    failed = sum(1 for r in results if r[2] != 0)
    cpu = sum(r[5] for r in results)
    print(
        f"make test: total wall time {total:.1f} s ({total / 60:.1f} min), "
        f"CPU time {cpu:.0f} s on {os.cpu_count()} cores"
    )
    print(f"stages: {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
