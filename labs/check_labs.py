"""Build every lab from its master notebook and grade both versions.

For each ``labs/NN-name/`` holding one otter master notebook:

1. ``otter assign`` writes the student version (what students receive: solutions removed,
   visible checks only) and the autograder version (reference solution, autograder zip with
   the hidden checks);
2. the reference solution is graded with the autograder zip, as a submission would be;
3. the student version, exactly as handed out, is graded the same way.

It prints one line per lab, ``LAB <name>: solution <score>/<max>, student <score>/<max>``,
and exits non-zero unless every solution scores full marks and every student version scores
below them. Every otter call runs under a timeout in its own process group, so a hanging
lab is reported as a failure instead of hanging CI.

    python labs/check_labs.py                    # build into a temporary directory
    python labs/check_labs.py --out labs/dist    # keep the generated versions (to publish)
    python labs/check_labs.py --only socket-table --verbose
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from grade import Grade, grade  # noqa: E402

CLASSROOM_WORKFLOW = HERE.parent / ".github" / "classroom" / "classroom.yml"


def find_labs() -> list:
    """``[(name, master notebook)]``: each ``labs/NN-name/`` with one master notebook."""
    labs = []
    for d in sorted(p for p in HERE.iterdir() if p.is_dir() and p.name[:2].isdigit()):
        masters = [nb for nb in d.glob("*.ipynb") if "ASSIGNMENT CONFIG" in nb.read_text()]
        if len(masters) != 1:
            raise SystemExit(f"{d}: expected one otter master notebook, found {len(masters)}")
        labs.append((d.name.split("-", 1)[1], masters[0]))
    return labs


def assign(master: Path, out: Path, timeout: float) -> str:
    """Run otter assign; return "" on success or the error text."""
    if out.exists():
        shutil.rmtree(out)
    cmd = [sys.executable, "-m", "otter", "assign", "--no-run-tests", str(master), str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=master.parent, start_new_session=True)
    try:
        log, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return f"otter assign did not finish within {timeout:g} s"
    if proc.returncode != 0:
        return "otter assign failed:\n" + "\n".join(log.strip().splitlines()[-20:])
    return ""


def check_lab(name: str, master: Path, out: Path, timeout: float) -> dict:
    start = time.monotonic()
    result = {"name": name, "error": "", "solution": Grade(), "student": Grade()}
    error = assign(master, out, timeout)
    if error:
        result["error"] = error
        result["seconds"] = time.monotonic() - start
        return result
    zips = sorted((out / "autograder").glob("*-autograder_*.zip"))
    if len(zips) != 1:
        result["error"] = f"expected one autograder zip in {out / 'autograder'}, found {len(zips)}"
        result["seconds"] = time.monotonic() - start
        return result
    for version, folder in (("solution", "autograder"), ("student", "student")):
        result[version] = grade(out / folder / master.name, zips[0], timeout,
                                out / "results" / version)
    if CLASSROOM_WORKFLOW.exists():
        workflows = out / "student" / ".github" / "workflows"
        workflows.mkdir(parents=True, exist_ok=True)
        shutil.copy(CLASSROOM_WORKFLOW, workflows / "classroom.yml")
        shutil.copy(HERE / "grade.py", out / "student" / "grade.py")
    result["seconds"] = time.monotonic() - start
    return result


def verdict(r: dict) -> list:
    """What is wrong with one lab's result (empty: it passes)."""
    if r["error"]:
        return [r["error"]]
    problems = []
    sol, stu = r["solution"], r["student"]
    if sol.error:
        problems.append(f"reference solution: {sol.error}")
    elif not sol.full_marks:
        lost = [f"{q} {s:g}/{m:g}" for q, (s, m, _) in sol.questions.items() if s < m]
        problems.append(f"the reference solution is below full marks: {', '.join(lost)}")
        for q, (s, m, output) in sol.questions.items():
            if s < m:
                problems.append(output.strip())
    if stu.error:
        problems.append(f"student version: {stu.error}")
    elif stu.full_marks:
        problems.append("the student version as handed out already scores full marks")
    return problems


def line(r: dict) -> str:
    if r["error"]:
        return f"LAB {r['name']}: FAILED ({r['error'].splitlines()[0]})"
    return (f"LAB {r['name']}: solution {r['solution'].text()}, "
            f"student {r['student'].text()}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Build and grade every lab (see the module docstring).")
    ap.add_argument("--out", type=Path, help="keep the generated versions here (default: a temporary directory)")
    ap.add_argument("--only", action="append", help="check only this lab (repeatable)")
    ap.add_argument("--jobs", type=int, default=2, help="labs checked at once (default 2)")
    ap.add_argument("--timeout", type=float, default=150.0,
                    help="seconds for each otter step of a lab (default 150)")
    ap.add_argument("--verbose", action="store_true", help="show every question's score")
    args = ap.parse_args(argv)
    if importlib.util.find_spec("otter") is None or importlib.util.find_spec("dill") is None:
        print("LAB checks need otter-grader and dill: pip install 'otter-grader==7.0.0' dill")
        return 1

    labs = find_labs()
    if args.only:
        unknown = set(args.only) - {n for n, _ in labs}
        if unknown:
            raise SystemExit(f"--only: no lab named {', '.join(sorted(unknown))}; "
                             f"labs: {', '.join(n for n, _ in labs)}")
        labs = [(n, m) for n, m in labs if n in args.only]
    root = args.out.resolve() if args.out else Path(tempfile.mkdtemp(prefix="labs-"))
    start = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = [pool.submit(check_lab, name, master, root / master.parent.name,
                                   args.timeout) for name, master in labs]
            results = [f.result() for f in futures]
    finally:
        if not args.out:
            shutil.rmtree(root, ignore_errors=True)

    failed = False
    for r in results:
        print(line(r) + f"  [{r['seconds']:.0f} s]", flush=True)
        problems = verdict(r)
        if args.verbose and not r["error"]:
            for version in ("solution", "student"):
                for q, (s, m, _) in r[version].questions.items():
                    print(f"    {version:<8} {q}: {s:g}/{m:g}")
        for p in problems:
            failed = True
            print("    " + p.replace("\n", "\n    "))
    print(f"{len(results)} labs checked in {time.monotonic() - start:.0f} s"
          + ("" if args.out is None else f"; versions written to {root}"))
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
