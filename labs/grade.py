"""Grade one lab submission with otter, outside Docker, and never hang.

    python grade.py SUBMISSION.ipynb AUTOGRADER.zip [--timeout 300] [--json] [--classroom]

Runs ``otter run`` in its own process group and kills the whole group if it overruns the
timeout. ``otter run`` exits 0 whatever the score, so the score is read from the
``results.json`` it writes. Prints ``score/max`` (or the failure) and exits 0 only for full
marks, so a GitHub Classroom step can use the exit status. A question whose failed checks all
say they cannot run on this machine (``timewait.labkit.CannotRunHere``: no private network
namespace) is reported as *not run*, not as failed; ``--json`` lists it under ``not_run``.
``--classroom`` also writes the per-question scores as the ``result`` step output that GitHub
Classroom's grading reporter reads (``classroom-resources/autograding-grading-reporter``).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

NOT_RUN = "CannotRunHere:"  # timewait.labkit.CannotRunHere, in a check's failure message


@dataclass
class Grade:
    score: float = 0.0
    max_score: float = 0.0
    questions: dict = field(default_factory=dict)  # name -> (score, max, output)
    not_run: dict = field(default_factory=dict)  # name -> why: checks this machine cannot run
    error: str = ""  # set when grading itself failed: timeout, crash, no results
    seconds: float = 0.0

    @property
    def full_marks(self) -> bool:
        return not self.error and self.max_score > 0 and self.score >= self.max_score

    @property
    def failed(self) -> list:
        """Questions below their points for a reason other than a check not run here."""
        return [q for q, (s, top, _) in self.questions.items() if s < top and q not in self.not_run]

    def text(self) -> str:
        if self.error:
            return f"FAILED ({self.error})"
        if self.not_run:
            return f"{self.score:g}/{self.max_score:g}, {', '.join(self.not_run)} not run on this machine"
        return f"{self.score:g}/{self.max_score:g}"


def not_run_reason(output: str) -> str:
    """Why a question's checks did not run, when every failed check of it says it could not
    run here; "" when one really failed."""
    failed = output.count("Test case failed")
    cannot = output.count(NOT_RUN)
    if not failed or cannot < failed:
        return ""
    line = next(text for text in output.splitlines() if NOT_RUN in text)
    return line.split(NOT_RUN, 1)[1].strip()


def otter_command() -> list:
    """``otter`` from the running interpreter's environment."""
    return [sys.executable, "-m", "otter", "run", "--no-logo"]


def read_results(path: Path) -> Grade:
    data = json.loads(path.read_text())
    grade = Grade()
    for test in data.get("tests", []):
        if "max_score" not in test:  # the "Public Tests" summary carries no points
            continue
        score, top = float(test.get("score") or 0), float(test["max_score"])
        grade.questions[test["name"]] = (score, top, test.get("output", ""))
        why = not_run_reason(test.get("output", "")) if score < top else ""
        if why:
            grade.not_run[test["name"]] = why
        grade.score += score
        grade.max_score += top
    if not grade.questions:
        grade.error = "the results hold no graded question"
    return grade


def grade(
    submission: Path, autograder: Path, timeout: float = 300.0, output_dir: Path | None = None
) -> Grade:
    """Run otter on ``submission`` with ``autograder`` (a zip from otter assign)."""
    start = time.monotonic()
    out = Path(output_dir or tempfile.mkdtemp(prefix="otter-run-"))
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.json"
    if results.exists():
        results.unlink()
    cmd = otter_command() + ["-a", str(autograder), "-o", str(out), str(submission)]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        log, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return Grade(
            error=f"grading did not finish within {timeout:g} s: the submission hangs or is far too slow",
            seconds=time.monotonic() - start,
        )
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # kernels or experiments left behind
        except ProcessLookupError:
            pass
    if proc.returncode != 0 or not results.exists():
        tail = "\n".join(log.strip().splitlines()[-15:])
        return Grade(
            error=f"otter run exited with status {proc.returncode} and "
            f"{'no results file' if not results.exists() else 'a results file'}:"
            f"\n{tail}",
            seconds=time.monotonic() - start,
        )
    g = read_results(results)
    g.seconds = time.monotonic() - start
    return g


def classroom_result(g: Grade) -> str:
    """The grade in the JSON shape GitHub Classroom's grading reporter reads, base64-encoded."""
    if g.error:
        tests = [{"name": "grading", "status": "error", "score": 0, "message": g.error}]
        status, top = "error", 0
    else:
        tests = [
            {
                "name": name,
                "score": score,
                "message": output.strip(),
                "status": "pass" if score >= top else "error" if name in g.not_run else "fail",
            }
            for name, (score, top, output) in g.questions.items()
        ]
        status, top = ("pass" if g.full_marks else "fail"), g.max_score
    data = {"version": 1, "status": status, "max_score": top, "tests": tests}
    return base64.b64encode(json.dumps(data).encode()).decode()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("submission", type=Path)
    ap.add_argument("autograder", type=Path)
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds (default 300)")
    ap.add_argument("--output-dir", type=Path, help="where otter writes results.json")
    ap.add_argument("--json", action="store_true", help="print the grade as JSON")
    ap.add_argument(
        "--classroom",
        action="store_true",
        help="append result=<grade for GitHub Classroom> to $GITHUB_OUTPUT",
    )
    args = ap.parse_args(argv)
    g = grade(args.submission, args.autograder, args.timeout, args.output_dir)
    if args.json:
        print(
            json.dumps(
                {
                    "submission": str(args.submission),
                    "score": g.score,
                    "max_score": g.max_score,
                    "error": g.error,
                    "questions": {k: v[:2] for k, v in g.questions.items()},
                    "not_run": g.not_run,
                }
            )
        )
    else:
        for name, (score, top, output) in g.questions.items():
            if name in g.not_run:
                print(f"{name}: not run on this machine ({g.not_run[name]})")
                continue
            print(f"{name}: {score:g}/{top:g}")
            if score < top:
                print("    " + output.strip().replace("\n", "\n    "))
        print(f"{args.submission}: {g.text()}")
    if args.classroom:
        with open(os.environ["GITHUB_OUTPUT"], "a") as fh:
            fh.write(f"result={classroom_result(g)}\n")
    return 0 if g.full_marks else 1


if __name__ == "__main__":
    sys.exit(main())
