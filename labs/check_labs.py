"""Build every lab from its master notebook and grade both versions.

For each ``labs/NN-name/`` holding one otter master notebook:

1. ``otter assign`` writes the student version (what students receive: solutions removed,
   visible checks only, with the student bundle from ``labs/student-kit/``: README,
   requirements, Binder configuration, the Classroom workflow and ``grade.py``) and the
   autograder version (reference solution, autograder zip with the hidden checks);
2. the reference solution is graded with the autograder zip, as a submission would be;
3. the student version, exactly as handed out, is graded the same way.

It prints one line per lab, ``LAB <name>: solution <score>/<max>, student <score>/<max>``,
and exits non-zero unless every solution scores full marks and every student version scores
below them. ``--check-bundle`` also installs one lab's student bundle in a fresh directory,
with this checkout as the course library, as its README says, and runs its first
``grader.check``. Every otter call runs under a timeout in its own process group, so a hanging
lab is reported as a failure instead of hanging CI.

    python labs/check_labs.py                    # build into a temporary directory
    python labs/check_labs.py --out labs/dist    # keep the generated versions (to publish)
    python labs/check_labs.py --only socket-table --verbose
    python labs/check_labs.py --check-bundle         # as make test-labs runs it
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
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
STUDENT_KIT = HERE / "student-kit"
PLACEHOLDER_URL = "git+https://github.com/ORG/why-tcp-waits"


def course_url() -> str:
    """What the student bundle's requirements install the course library from: this
    repository's ``origin`` on GitHub, or a placeholder to replace."""
    proc = subprocess.run(
        ["git", "-C", str(HERE), "remote", "get-url", "origin"], capture_output=True, text=True
    )
    url = proc.stdout.strip()
    if proc.returncode == 0 and url.startswith("https://"):
        return f"git+{url}"
    if proc.returncode == 0 and url.startswith("git@github.com:"):
        return "git+https://github.com/" + url.split(":", 1)[1]
    return PLACEHOLDER_URL


def write_bundle(master: Path, student: Path, url: str) -> None:
    """Everything a student repository holds beside the notebook: README, requirements,
    Binder configuration, the Classroom workflow and grade.py."""
    import nbformat

    cells = nbformat.read(master, as_version=4).cells
    title = next(
        (
            line[2:].strip()
            for c in cells
            if c.cell_type == "markdown"
            for line in c.source.splitlines()
            if line.startswith("# ")
        ),
        master.stem,
    )
    for src in STUDENT_KIT.rglob("*"):
        if src.is_file():
            dest = student / src.relative_to(STUDENT_KIT)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(
                src.read_text()
                .replace("{title}", title)
                .replace("{notebook}", master.name)
                .replace("{course_url}", url)
            )
    workflows = student / ".github" / "workflows"
    workflows.mkdir(parents=True, exist_ok=True)
    shutil.copy(CLASSROOM_WORKFLOW, workflows / "classroom.yml")
    shutil.copy(HERE / "grade.py", student / "grade.py")


def bundle_check(name: str, master: Path, out: Path, timeout: float) -> str:
    """Build one lab's student bundle with this checkout as the course library, install it in
    a fresh directory and run its first check; print one BUNDLE line. Returns "" or the error."""
    started = time.monotonic()
    error = assign(master, out, timeout)
    if not error:
        # A copy of this checkout: building it writes build/ and *.egg-info beside its sources.
        course = out / "course"
        copy_checkout(HERE.parent, course)
        write_bundle(master, out / "student", f"file://{course}")
        error = check_bundle(out / "student", master.name, timeout=600)
    print(
        f"BUNDLE {name}: "
        + (
            f"FAILED: {error}"
            if error
            else 'installed in a fresh directory with its README\'s command; grader.check("q1") ran'
        )
        + f"  [{time.monotonic() - started:.0f} s]",
        flush=True,
    )
    return error


def copy_checkout(root: Path, dest: Path) -> None:
    """The files of the checkout that git tracks or would track (never ignored ones)."""
    listed = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    )
    for rel in filter(None, listed.stdout.decode().split("\0")):
        src = root / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            try:
                shutil.copy2(src, dest / rel)
            except FileNotFoundError:
                # An untracked file another stage of `make test` wrote and removed meanwhile.
                if not is_untracked(root, rel):
                    raise


def is_untracked(root: Path, rel: str) -> bool:
    listed = subprocess.run(
        ["git", "-C", str(root), "ls-files", "--error-unmatch", "--", rel], capture_output=True
    )
    return listed.returncode != 0


def check_bundle(student: Path, notebook: str, timeout: float) -> str:
    """Install a student bundle as its README says, in a fresh directory and virtual
    environment, and run the notebook's first check. Returns "" or what went wrong."""
    with tempfile.TemporaryDirectory(prefix="student-bundle-") as tmp:
        work = Path(tmp) / "lab"
        shutil.copytree(student, work)
        steps = [
            [sys.executable, "-m", "venv", ".venv"],
            [".venv/bin/python", "-m", "pip", "install", "-q", "-r", "requirements.txt"],
            [".venv/bin/jupyter", "execute", "--allow-errors", "--inplace", notebook],
        ]
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
        for cmd in steps:
            try:
                proc = subprocess.run(
                    cmd,
                    cwd=work,
                    capture_output=True,
                    text=True,
                    env=env,
                    timeout=timeout,
                    start_new_session=True,
                )
            except subprocess.TimeoutExpired:
                return f"{' '.join(cmd)} did not finish within {timeout:g} s"
            if proc.returncode != 0:
                return f"{' '.join(cmd)} failed:\n" + "\n".join(
                    (proc.stderr or proc.stdout).strip().splitlines()[-10:]
                )
        import nbformat

        nb = nbformat.read(work / notebook, as_version=4)
        outputs = [
            o
            for c in nb.cells
            if c.cell_type == "code" and c.source.startswith('grader.check("q1")')
            for o in c.get("outputs", [])
        ]
        errors = [
            f"{o.ename}: {o.evalue}"
            for c in nb.cells
            if c.cell_type == "code"
            for o in c.get("outputs", [])
            if o.output_type == "error" and not c.source.startswith("grader.check")
        ]
        shown = " ".join(str(o.get("data", {}).get("text/plain", o.get("text", ""))) for o in outputs)
        if "q1 results" not in shown:
            return f'grader.check("q1") showed no results in the installed bundle: {shown[:300]!r}'
        if errors:
            return "a cell of the handed-out notebook raised " + "; ".join(errors[:3])
    return ""


def find_labs() -> list:
    """``[(name, master notebook)]``: each ``labs/NN-name/`` with one master notebook."""
    labs = []
    for d in sorted(p for p in HERE.iterdir() if p.is_dir() and p.name[:2].isdigit()):
        masters = [nb for nb in d.glob("*.ipynb") if "ASSIGNMENT CONFIG" in nb.read_text()]
        if len(masters) != 1:
            raise SystemExit(f"{d}: expected one otter master notebook, found {len(masters)}")
        labs.append((d.name.split("-", 1)[1], masters[0]))
    return labs


# Where one run of the checks (make test) keeps each lab's otter assign output, so the stages
# that need the same lab built (test-labs, test-labs-repeat) build it once. Unset: no sharing.
ASSIGNED = os.environ.get("TIMEWAIT_LABS_ASSIGNED")


def assign_key(master: Path) -> str:
    """What otter assign's output depends on: the lab's files, otter's version, the Python."""
    digest = hashlib.sha256(f"{importlib.metadata.version('otter-grader')} {sys.executable}".encode())
    for path in sorted(master.parent.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and ".ipynb_checkpoints" not in path.parts:
            digest.update(str(path.relative_to(master.parent)).encode() + b"\0" + path.read_bytes())
    return f"{master.parent.name}-{digest.hexdigest()[:16]}"


def assign(master: Path, out: Path, timeout: float) -> str:
    """Run otter assign (or reuse this run's output for the same lab files); return "" on
    success or the error text."""
    if out.exists():
        shutil.rmtree(out)
    shared = Path(ASSIGNED) / assign_key(master) if ASSIGNED else None
    if shared is not None and shared.is_dir():
        shutil.copytree(shared, out, symlinks=True)
        return ""
    error = run_assign(master, out, timeout)
    if shared is not None and not error:
        shared.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=shared.parent))
        shutil.copytree(out, staging / "out", symlinks=True)
        try:
            os.rename(staging / "out", shared)
        except OSError:
            pass  # another check built the same lab at the same moment
        shutil.rmtree(staging, ignore_errors=True)
    return error


def run_assign(master: Path, out: Path, timeout: float) -> str:
    cmd = [sys.executable, "-m", "otter", "assign", "--no-run-tests", str(master), str(out)]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=master.parent,
        start_new_session=True,
    )
    try:
        log, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return f"otter assign did not finish within {timeout:g} s"
    if proc.returncode != 0:
        return "otter assign failed:\n" + "\n".join(log.strip().splitlines()[-20:])
    return ""


def check_lab(name: str, master: Path, out: Path, timeout: float, url: str = PLACEHOLDER_URL) -> dict:
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
        result[version] = grade(out / folder / master.name, zips[0], timeout, out / "results" / version)
    write_bundle(master, out / "student", url)
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
    elif sol.not_run and not sol.failed:
        pass  # checks this machine cannot run: reported in the LAB line, not failures
    elif not sol.full_marks:
        lost = [f"{q} {s:g}/{m:g}" for q, (s, m, _) in sol.questions.items() if s < m]
        problems.append(f"the reference solution is below full marks: {', '.join(lost)}")
        for s, m, output in sol.questions.values():
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
    return f"LAB {r['name']}: solution {r['solution'].text()}, student {r['student'].text()}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Build and grade every lab (see the module docstring).")
    ap.add_argument(
        "--out", type=Path, help="keep the generated versions here (default: a temporary directory)"
    )
    ap.add_argument("--only", action="append", help="check only this lab (repeatable)")
    ap.add_argument("--jobs", type=int, default=2, help="labs checked at once (default 2)")
    ap.add_argument(
        "--timeout", type=float, default=150.0, help="seconds for each otter step of a lab (default 150)"
    )
    ap.add_argument("--verbose", action="store_true", help="show every question's score")
    ap.add_argument(
        "--course-url",
        default=None,
        help="where the student bundle installs timewait from (pip URL; default: this repository's origin)",
    )
    ap.add_argument(
        "--check-bundle",
        action="store_true",
        help="also install one lab's student bundle in a fresh directory from this "
        "checkout, as its README says, and run its first check",
    )
    args = ap.parse_args(argv)
    if importlib.util.find_spec("otter") is None or importlib.util.find_spec("dill") is None:
        print("LAB checks need otter-grader and dill: pip install 'otter-grader==7.0.0' dill")
        return 1

    labs = find_labs()
    if args.only:
        unknown = set(args.only) - {n for n, _ in labs}
        if unknown:
            raise SystemExit(
                f"--only: no lab named {', '.join(sorted(unknown))}; labs: {', '.join(n for n, _ in labs)}"
            )
        labs = [(n, m) for n, m in labs if n in args.only]
    root = args.out.resolve() if args.out else Path(tempfile.mkdtemp(prefix="labs-"))
    start = time.monotonic()
    bundle_error, bundle = None, None
    if args.check_bundle:
        name, master = labs[0]
        bundle = ThreadPoolExecutor(max_workers=1).submit(
            bundle_check, name, master, root / "bundle-check", args.timeout
        )
    try:
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            url = args.course_url or course_url()
            futures = [
                pool.submit(check_lab, name, master, root / master.parent.name, args.timeout, url)
                for name, master in labs
            ]
            results = [f.result() for f in futures]
            if url == PLACEHOLDER_URL and args.out:
                print(
                    f"note: the student bundles install timewait from {url}; give "
                    f"--course-url the course repository's pip URL"
                )
        if bundle is not None:
            bundle_error = bundle.result()
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
    print(
        f"{len(results)} labs checked in {time.monotonic() - start:.0f} s"
        + ("" if args.out is None else f"; versions written to {root}")
    )
    return 1 if failed or bundle_error or not results else 0


if __name__ == "__main__":
    sys.exit(main())
