"""Run every check of every lab many times, against the reference solution and against
deliberately wrong answers, and fail on any check that changes its mind.

A check that passes a correct answer on one run and fails it on the next teaches a student
nothing and fails CI at random; one that a wrong answer sometimes passes grades by luck.
For every lab this script

1. builds the autograder version with ``otter assign`` (every check, hidden ones included);
2. executes the reference solution notebook once, as ``otter run`` does (its code cells, in
   order, in one namespace);
3. runs every check of every question ``--runs`` times against it: each run must give full
   marks;
4. for each deliberately wrong answer in ``labs/NN-name/wrong/qN_*.py`` (code that replaces
   that question's solution, with a docstring saying which mistake it makes), executes the
   reference notebook again, then the wrong answer, and runs that question's checks
   ``--runs`` times: each run must be below full marks.

The checks are otter's own test files run with otter's own runner
(``otter.test_files.ExceptionTestFile``), so they behave as they do in grading. A check that
raises ``timewait.labkit.CannotRunHere`` (a machine without namespaces) counts as *not run*.

    python labs/repeat_checks.py                 # 20 runs, every lab
    python labs/repeat_checks.py --runs 5 --only port-budget

It prints one line per lab and exits non-zero on any flip.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from check_labs import assign, find_labs  # noqa: E402

REPORT = "REPEAT-REPORT "


# ------------------------------------------------------------ in the worker process


def notebook_env(notebook: Path) -> dict:
    """Execute the code cells of an otter-generated notebook as ``otter run`` does, skipping
    otter's own cells (its initialisation and the ``grader.check`` calls) and the cells
    tagged ``lab-demo``, which only show a run to the student."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    env = {"__name__": "__main__"}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        source = cell.source
        if (
            "otter.Notebook(" in source
            or source.lstrip().startswith("grader.")
            or "lab-demo" in cell.metadata.get("tags", [])
        ):
            continue
        exec(compile(source, f"<{notebook.name} cell {index}>", "exec"), env)  # noqa: S102
    return env


def run_checks(test_file: Path, env: dict) -> list:
    """``[(check name, "pass" | "fail" | "not run", message)]`` for one question's file."""
    from otter.test_files import ExceptionTestFile

    tf = ExceptionTestFile.from_file(str(test_file))
    tf.run(env)
    out = []
    for result in tf.test_case_results:
        if result.passed:
            verdict = "pass"
        elif "CannotRunHere:" in result.message:
            verdict = "not run"
        else:
            verdict = "fail"
        out.append((result.test_case.name, verdict, result.message))
    return out


def worker(lab_dir: Path, notebook: Path, tests: Path, wrong: list, runs: int) -> dict:
    os.chdir(lab_dir)
    sys.path.insert(0, str(lab_dir))
    questions = sorted(tests.glob("q*.py"))
    report = {"solution": {}, "wrong": {}}

    env = notebook_env(notebook)
    for _ in range(runs):
        for q in questions:
            for name, verdict, message in run_checks(q, env):
                entry = report["solution"].setdefault(f"{q.stem}/{name}", {"verdicts": [], "messages": []})
                entry["verdicts"].append(verdict)
                if verdict == "fail" and len(entry["messages"]) < 2:
                    entry["messages"].append(message)

    for path in wrong:
        question = Path(path).name.split("_", 1)[0]
        env = notebook_env(notebook)
        code = Path(path).read_text()
        exec(compile(code, str(path), "exec"), env)  # noqa: S102
        entry = {"question": question, "runs": [], "example": ""}
        for _ in range(runs):
            verdicts = run_checks(tests / f"{question}.py", env)
            kinds = {v for _, v, _ in verdicts}
            entry["runs"].append(
                "caught" if "fail" in kinds else "not run" if "not run" in kinds else "full marks"
            )
            if not entry["example"]:
                entry["example"] = next((m for _, v, m in verdicts if v == "fail"), "")
        report["wrong"][Path(path).name] = entry
    return report


# ------------------------------------------------------------ the driver


def check_lab(name: str, master: Path, root: Path, runs: int, timeout: float) -> dict:
    start = time.monotonic()
    out = root / master.parent.name
    error = assign(master, out, timeout)
    if error:
        return {"name": name, "error": error, "seconds": time.monotonic() - start}
    autograder = out / "autograder"
    zips = sorted(autograder.glob("*-autograder_*.zip"))
    tests = out / "tests"
    with zipfile.ZipFile(zips[0]) as z:
        for member in z.namelist():
            if member.startswith("tests/"):
                z.extract(member, out)
    wrong = sorted(str(p) for p in (master.parent / "wrong").glob("q*_*.py"))
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        str(autograder),
        str(autograder / master.name),
        str(tests),
        "--runs",
        str(runs),
    ] + [a for p in wrong for a in ("--wrong", p)]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout * runs, start_new_session=True
        )
    except subprocess.TimeoutExpired:
        return {
            "name": name,
            "error": f"did not finish within {timeout * runs:g} s",
            "seconds": time.monotonic() - start,
        }
    lines = [line for line in proc.stdout.splitlines() if line.startswith(REPORT)]
    if not lines:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-20:])
        return {
            "name": name,
            "error": f"the worker exited with status {proc.returncode}:\n{tail}",
            "seconds": time.monotonic() - start,
        }
    report = json.loads(lines[-1][len(REPORT) :])
    report.update(name=name, error="", seconds=time.monotonic() - start, wrong_files=len(wrong))
    return report


def summarise(r: dict, runs: int) -> tuple:
    """``(line, problems)`` for one lab's report."""
    if r["error"]:
        return f"LAB {r['name']}: FAILED ({r['error'].splitlines()[0]})", [r["error"]]
    problems = []
    checks = r["solution"]
    flips = {k: v for k, v in checks.items() if "fail" in v["verdicts"]}
    not_run = [k for k, v in checks.items() if "not run" in v["verdicts"]]
    for key, v in flips.items():
        problems.append(
            f"{key} failed the reference solution in {v['verdicts'].count('fail')} "
            f"of {runs} runs:\n" + "\n".join(v["messages"])
        )
    passed_wrong = {k: v for k, v in r["wrong"].items() if "full marks" in v["runs"]}
    for key, v in passed_wrong.items():
        problems.append(
            f"wrong answer {key} got full marks on {v['question']} in "
            f"{v['runs'].count('full marks')} of {runs} runs"
        )
    per_question = {}
    for v in r["wrong"].values():
        per_question[v["question"]] = per_question.get(v["question"], 0) + 1
    questions = sorted({k.split("/")[0] for k in checks})
    thin = [q for q in questions if per_question.get(q, 0) < 2]
    if thin:
        problems.append(f"fewer than two wrong answers for {', '.join(thin)}")
    caught = sum(v["runs"].count("caught") for v in r["wrong"].values())
    full_runs = sum(1 for i in range(runs) if not any(v["verdicts"][i] == "fail" for v in checks.values()))
    line = (
        f"LAB {r['name']}: solution at full marks in {full_runs}/{runs} runs "
        f"({len(checks)} checks"
        + (f", {len(not_run)} not run here" if not_run else "")
        + f"), wrong answers below full marks in {caught}/{runs * len(r['wrong'])} runs "
        f"({len(r['wrong'])} answers)  [{r['seconds']:.0f} s]"
    )
    return line, problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Repeat every lab check (see the module docstring).")
    ap.add_argument("--runs", type=int, default=20, help="runs of every check (default 20)")
    ap.add_argument("--only", action="append", help="this lab only (repeatable)")
    ap.add_argument("--jobs", type=int, default=2, help="labs at once (default 2)")
    ap.add_argument(
        "--timeout", type=float, default=150.0, help="seconds per run of a lab's checks (default 150)"
    )
    ap.add_argument(
        "--verbose",
        action="store_true",
        help="show the message each wrong answer gets from its first failing check",
    )
    ap.add_argument("--worker", nargs=3, metavar=("LAB_DIR", "NOTEBOOK", "TESTS"), help=argparse.SUPPRESS)
    ap.add_argument("--wrong", action="append", default=[], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error(f"--runs must be at least 1, got {args.runs}")
    if args.worker:
        lab_dir, notebook, tests = (Path(p) for p in args.worker)
        print(REPORT + json.dumps(worker(lab_dir, notebook, tests, args.wrong, args.runs)), flush=True)
        return 0

    labs = find_labs()
    if args.only:
        unknown = set(args.only) - {n for n, _ in labs}
        if unknown:
            ap.error(
                f"--only: no lab named {', '.join(sorted(unknown))}; labs: {', '.join(n for n, _ in labs)}"
            )
        labs = [(n, m) for n, m in labs if n in args.only]
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="labs-repeat-") as tmp:
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            results = list(
                pool.map(lambda lab: check_lab(lab[0], lab[1], Path(tmp), args.runs, args.timeout), labs)
            )
    failed = False
    for r in results:
        line, problems = summarise(r, args.runs)
        print(line, flush=True)
        for p in problems:
            failed = True
            print("    " + p.replace("\n", "\n    "))
        if args.verbose and not r["error"]:
            for key, v in r["wrong"].items():
                print(f"    {key}:\n        " + v["example"].replace("\n", "\n        "))
    print(f"{len(results)} labs, {args.runs} runs each, in {time.monotonic() - start:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
