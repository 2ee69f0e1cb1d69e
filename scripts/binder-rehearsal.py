#!/usr/bin/env python3
"""Binder rehearsal: the course as a Binder reader gets it, built from ``binder/`` alone.

1. Python as ``binder/runtime.txt`` asks (or the system python3, with a note), the
   ``binder/apt.txt`` packages (installed with apt-get as root, else the exact command is
   printed), a fresh virtual environment with the pinned versions of
   ``binder/requirements.txt`` only, then ``binder/postBuild`` run from the root of a copy of
   the repository, as repo2docker does. The pins are installed with uv when it is at hand
   (the same versions pip would install, in seconds instead of minutes), else with pip.
2. In that environment, from copies (the committed notebooks are never touched), as an
   unprivileged user (``nobody`` when this runs as root), one after the other:
   - with user namespaces available: the tier must be ``full``, and nbval re-executes every
     notebook in ``notebooks/`` and each lab's master notebook in ``labs/`` and compares
     every cell with its stored output (the check ``make test-notebooks`` makes, here as
     a Binder reader);
   - with user namespaces switched off for that run alone: the reader's processes run in a
     user namespace whose own ``user.max_user_namespaces`` is 0, so the kernel refuses every
     new user namespace, exactly as on a host that allows none. The host's sysctls are never
     written. The tier must then be ``host`` or ``none``, every notebook must run with no
     error or traceback in any cell, and recorded outcomes must appear with their notice.
3. Without user namespaces, every lab too: its reference solution with its checks (the
   autograder version ``otter assign`` writes from the master), top to bottom. No check may
   fail; a check that needs a namespace must say it cannot run here, and at least one must.

Each notebook has a time limit; the total time is printed. Temporary files and every
process started are removed on exit: as root, each run has its own PID namespace, so
nothing it started can outlive it; otherwise its process group is stopped and nbclient
shuts its kernel down.

    python3 scripts/binder-rehearsal.py [--jobs N] [--nbval-workers N] [--installer pip|uv]
                                        [--notebook-timeout S] [--cell-timeout S]
                                        [--save-failed DIR]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The PATH of the Docker images Binder starts from, with the environment's bin first.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TIER_CHECK = "from timewait.tiers import detect_tier; t = detect_tier(); print(t.name); print(t.reason)"
RECORDED_NOTICE = "[recorded on "
NOT_RUN = "CannotRunHere:"  # a lab check that needs what this machine does not give
REPORT_PREFIX = "BINDER-REHEARSAL-REPORT "
MODES = {
    "namespaces available": {"no_userns": False, "tiers": ("full",), "check": "nbval"},
    "namespaces off": {"no_userns": True, "tiers": ("host", "none"), "check": "execute"},
}
CLONE_NEWUSER = 0x10000000
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


# ---------------------------------------------------------------- run as the reader


def without_user_namespaces(cmd: list) -> None:
    """Enter a user namespace that may hold no further user namespace, then exec ``cmd``.

    User-namespace limits are kept per user namespace ("The maximum number of user namespaces
    that any user in the current user namespace may create", Linux
    Documentation/admin-guide/sysctl/user.rst): the value written here is this new
    namespace's own ``max_user_namespaces``, and the host's stays as it was. The caller keeps
    its uid and gid (mapped to themselves); the exec drops the capabilities the new namespace
    granted, since the uid is not 0 in it.
    """
    import ctypes

    uid, gid = os.getuid(), os.getgid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWUSER) != 0:
        err = ctypes.get_errno()
        sys.exit(
            f"cannot create the user namespace that switches namespaces off: "
            f"unshare(CLONE_NEWUSER): {os.strerror(err)}"
        )
    for path, text in (
        ("/proc/self/setgroups", "deny"),
        ("/proc/self/uid_map", f"{uid} {uid} 1"),
        ("/proc/self/gid_map", f"{gid} {gid} 1"),
        ("/proc/sys/user/max_user_namespaces", "0"),
    ):
        with open(path, "w") as fh:
            fh.write(text)
    if Path("/proc/sys/user/max_user_namespaces").read_text().strip() != "0":
        sys.exit("max_user_namespaces did not become 0 in the rehearsal's user namespace")
    os.execvp(cmd[0], cmd)


def execute_notebook(path: str, cell_timeout: int) -> None:
    """Run one notebook top to bottom with nbclient; print one JSON line describing it."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # let nbclient stop its kernel
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=cell_timeout, startup_timeout=60, resources={"metadata": {"path": str(Path(path).parent)}}
    )
    problems, tiers, notices, not_run = [], [], 0, 0
    try:
        client.execute()
    except CellExecutionError:
        pass  # the failing cell's error output is reported below
    except Exception as exc:  # noqa: BLE001 (a cell timeout, a kernel that died or did not start)
        first = (ANSI.sub("", str(exc)).strip().splitlines() or [""])[0]
        problems.append(
            {"cell": None, "source": "", "error": f"{type(exc).__name__}: {first}", "traceback": []}
        )
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        expected_error = "raises-exception" in cell.metadata.get("tags", [])
        first_line = (cell.source.strip().splitlines() or [""])[0][:60]
        for out in cell.get("outputs", []):
            if out.output_type == "error" and not expected_error:
                tb = ANSI.sub("", "\n".join(out.get("traceback", [])))
                problems.append(
                    {
                        "cell": index,
                        "source": first_line,
                        "error": f"{out.ename}: {out.evalue}",
                        "traceback": tb.splitlines()[-12:],
                    }
                )
                continue
            text = (
                out.get("text", "")
                if out.output_type == "stream"
                else str(out.get("data", {}).get("text/plain", ""))
            )
            if cell.source.startswith("grader.check("):  # a lab's checks, run by otter
                failed, cannot = text.count("Test case failed"), text.count(NOT_RUN)
                not_run += cannot
                if failed > cannot:
                    problems.append(
                        {
                            "cell": index,
                            "source": first_line,
                            "error": f"{failed - cannot} check(s) failed the reference solution",
                            "traceback": text.splitlines()[-12:],
                        }
                    )
            if "Traceback (most recent call last)" in text:
                problems.append(
                    {
                        "cell": index,
                        "source": first_line,
                        "error": f"traceback in {out.get('name', 'output')}",
                        "traceback": text.splitlines()[-12:],
                    }
                )
            if out.output_type == "stream" and out.name == "stdout":
                tiers += re.findall(r"^tier: (\w+)$", text, flags=re.MULTILINE)
            notices += text.count(RECORDED_NOTICE)
    nbformat.write(nb, path)  # the executed copy, kept for --save-failed
    print(
        REPORT_PREFIX
        + json.dumps(
            {"problems": problems, "tiers": sorted(set(tiers)), "notices": notices, "not_run": not_run}
        ),
        flush=True,
    )


# ---------------------------------------------------------------- the rehearsal


class Rehearsal:
    def __init__(self, args):
        self.args = args
        self.is_root = os.geteuid() == 0
        self.reader = pwd.getpwnam("nobody") if self.is_root else pwd.getpwuid(os.getuid())
        self.tmp = Path(tempfile.mkdtemp(prefix="timewait-binder."))
        os.chmod(self.tmp, 0o755)
        self.repo = self.tmp / "repo"
        self.venv = self.tmp / "venv"
        self.active: set = set()
        self.lock = threading.Lock()
        self.failures: list = []
        self.t0 = time.monotonic()

    # -- helpers
    def sh(self, cmd, **kw) -> subprocess.CompletedProcess:
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True, **kw)
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-25:]
            raise SystemExit(
                f"{' '.join(map(str, cmd))} failed (status {proc.returncode}):\n" + "\n".join(tail)
            )
        return proc

    def reader_argv(self, cmd: list, home: Path, no_userns: bool) -> list:
        env = [
            "env",
            "-i",
            f"PATH={self.venv}/bin:{SYSTEM_PATH}",
            f"HOME={home}",
            f"USER={self.reader.pw_name}",
            "LANG=C.UTF-8",
            "PYTHONDONTWRITEBYTECODE=1",
        ]
        if no_userns:
            cmd = [
                str(self.venv / "bin/python"),
                str(self.repo / "scripts/binder-rehearsal.py"),
                "without-user-namespaces",
                "--",
            ] + cmd
        if not self.is_root:
            return env + cmd
        # A PID namespace of its own: when its first process ends, the kernel ends the rest. Its
        # own /proc too, so a process ID the reader's code reads is one /proc knows (nsenter -t).
        return (
            [
                "unshare",
                "--pid",
                "--fork",
                "--kill-child",
                "--mount-proc",
                "--",
                "setpriv",
                f"--reuid={self.reader.pw_uid}",
                f"--regid={self.reader.pw_gid}",
                "--clear-groups",
                "--",
            ]
            + env
            + cmd
        )

    def run_bounded(self, argv: list, timeout: float, cwd: Path) -> tuple:
        """Run ``argv``; on timeout stop it and everything it started. (status, out, err)."""
        proc = subprocess.Popen(
            argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        with self.lock:
            self.active.add(proc)
        try:
            out, err = proc.communicate(timeout=timeout)
            return proc.returncode, out, err
        except subprocess.TimeoutExpired:
            self.stop(proc)
            out, err = proc.communicate()
            return None, out, err
        finally:
            with self.lock:
                self.active.discard(proc)

    def stop(self, proc: subprocess.Popen) -> None:
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            try:
                os.killpg(proc.pid, sig)
            except (ProcessLookupError, PermissionError):
                return
            try:
                proc.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                pass

    def give_to_reader(self, path: Path) -> None:
        if self.is_root:
            for dirpath, dirnames, filenames in os.walk(path):
                for name in [dirpath] + [os.path.join(dirpath, n) for n in dirnames + filenames]:
                    os.lchown(name, self.reader.pw_uid, self.reader.pw_gid)

    # -- stages
    def python(self) -> str:
        spec = (
            (ROOT / "binder/runtime.txt").read_text().strip()
            if (ROOT / "binder/runtime.txt").exists()
            else ""
        )
        match = re.fullmatch(r"python-(\d+\.\d+)(\.\d+)?", spec.splitlines()[0] if spec else "")
        if match:
            version = match.group(1)
            # System locations first: an interpreter under /root is not readable by the reader.
            for cand in (
                f"/usr/bin/python{version}",
                f"/usr/local/bin/python{version}",
                shutil.which(f"python{version}"),
            ):
                if (
                    cand
                    and os.access(cand, os.X_OK)
                    and subprocess.run(
                        [cand, "-c", "import venv, ensurepip"], check=False, capture_output=True
                    ).returncode
                    == 0
                ):
                    print(f"python: {cand} (binder/runtime.txt asks for python-{version})")
                    return cand
            print(
                f"note: binder/runtime.txt asks for python-{version}, which is not installed "
                f"here (with venv); using the system python3 instead"
            )
        else:
            print(f"note: binder/runtime.txt names no python-X.Y ({spec!r}); using the system python3")
        system = shutil.which("python3") or sys.executable
        print(f"python: {system}")
        return system

    def apt(self) -> None:
        wanted = [line.split("#")[0].strip() for line in (ROOT / "binder/apt.txt").read_text().splitlines()]
        wanted = [p for p in wanted if p]
        if not shutil.which("dpkg-query"):
            print(f"apt.txt: this is not a Debian system; Binder would install: {' '.join(wanted)}")
            return
        missing = [
            p
            for p in wanted
            if "install ok installed"
            not in subprocess.run(
                ["dpkg-query", "-W", "-f=${Status}", p], check=False, capture_output=True, text=True
            ).stdout
        ]
        if not missing:
            print(f"apt.txt: all {len(wanted)} packages are installed ({' '.join(wanted)})")
            return
        if not self.is_root:
            print(
                f"apt.txt: not root, so the packages {' '.join(missing)} cannot be installed here; "
                f"Binder installs them as root. Install them with:  "
                f"sudo apt-get install -y {' '.join(missing)}"
            )
            return
        print(f"apt.txt: installing {' '.join(missing)} with apt-get")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if (
            subprocess.run(
                ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
                check=False,
                capture_output=True,
                env=env,
            ).returncode
            != 0
        ):
            self.sh(["apt-get", "update", "-q"], env=env)
            self.sh(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], env=env)

    def copy_repository(self) -> None:
        """The files a clone would have, plus files not yet committed; never the ignored ones."""
        listed = subprocess.run(
            [
                "git",
                "-c",
                f"safe.directory={ROOT}",
                "-C",
                str(ROOT),
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ],
            check=False,
            capture_output=True,
        )
        if listed.returncode == 0:
            for rel in filter(None, listed.stdout.decode().split("\0")):
                src = ROOT / rel
                if src.is_file():
                    (self.repo / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(src, self.repo / rel)
        else:
            shutil.copytree(
                ROOT,
                self.repo,
                symlinks=True,
                ignore=shutil.ignore_patterns(
                    ".git", ".venv", "_build", "__pycache__", "*.egg-info", ".ipynb_checkpoints"
                ),
            )
        print(f"repository copied to {self.repo}")

    def installer(self) -> list:
        """The command that installs a requirements file into the new environment."""
        uv = shutil.which("uv") or next(
            (
                str(p)
                for p in (ROOT / ".venv/bin/uv", Path(sys.executable).parent / "uv")
                if os.access(p, os.X_OK)
            ),
            None,
        )
        if self.args.installer == "uv" and uv is None:
            raise SystemExit("--installer uv: no uv found on PATH or in .venv/bin")
        if self.args.installer != "pip" and uv is not None:
            return [uv, "pip", "install", "-q", "--python", str(self.venv / "bin/python")]
        return [str(self.venv / "bin/python"), "-m", "pip", "install", "-q"]

    def environment(self, python: str) -> None:
        self.sh([python, "-m", "venv", str(self.venv)])  # with pip, which postBuild uses
        install = self.installer()
        self.sh(install + ["-r", "binder/requirements.txt"], cwd=self.repo)
        tool = "uv" if "uv" in Path(install[0]).name else "pip"
        print(f"venv: {self.venv} from binder/requirements.txt (installed with {tool})")

    def post_build(self) -> None:
        script = self.repo / "binder/postBuild"
        if not script.exists():
            print("postBuild: none")
            return
        # repo2docker makes it executable and runs it from the repository root, with the
        # environment's bin first on PATH.
        script.chmod(script.stat().st_mode | 0o111)
        env = {
            **os.environ,
            "PATH": f"{self.venv}/bin:{os.environ.get('PATH', SYSTEM_PATH)}",
            "VIRTUAL_ENV": str(self.venv),
        }
        env.pop("PYTHONPATH", None)
        self.sh(["./binder/postBuild"], cwd=self.repo, env=env)
        print("postBuild: ran from the repository root")
        for dirpath, dirnames, filenames in os.walk(self.tmp):
            for name in [dirpath] + [os.path.join(dirpath, n) for n in dirnames + filenames]:
                if not os.path.islink(name):
                    mode = os.stat(name).st_mode
                    os.chmod(name, mode | 0o444 | (0o111 if mode & 0o100 else 0))

    def mode_run(self, label: str, no_userns: bool, tiers: tuple, notebooks: list, check: str) -> None:
        """One reader's run; its report is printed in one piece when it ends."""
        lines: list = []
        try:
            self._mode_run(label, no_userns, tiers, notebooks, check, lines.append)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 (a failure of this run)
            self.failures.append(f"{label}: {type(exc).__name__}: {exc}")
            lines.append(self.failures[-1])
        with self.lock:
            print("\n".join(lines), flush=True)

    def _mode_run(
        self, label: str, no_userns: bool, tiers: tuple, notebooks: list, check: str, print
    ) -> None:  # noqa: A002 (the run's own report)
        started = time.monotonic()
        work = self.tmp / label.replace(" ", "-")
        shutil.copytree(
            self.repo,
            work / "repo",
            symlinks=True,
            ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"),
        )
        (work / "home").mkdir()
        self.give_to_reader(work)
        home = work / "home"
        print(f"\n== {label}: {len(notebooks)} notebooks as {self.reader.pw_name}")
        status, out, err = self.run_bounded(
            self.reader_argv([str(self.venv / "bin/python"), "-c", TIER_CHECK], home, no_userns), 60, work
        )
        lines = out.strip().splitlines()
        if status != 0 or not lines:
            self.failures.append(f"{label}: the tier check failed: {(err or out).strip()[-800:]}")
            print(self.failures[-1])
            return
        tier, reason = lines[0], " ".join(lines[1:])
        print(f"tier detected by the library: {tier} ({reason})")
        if tier not in tiers:
            self.failures.append(
                f"{label}: the library detected tier {tier!r}, expected {' or '.join(tiers)} ({reason})"
            )
            print(self.failures[-1])
            return
        if check == "nbval":
            self.nbval(label, work, home, print)
            print(f"{label}: {time.monotonic() - started:.0f} s")
            return

        def one(nb: str) -> tuple:
            t = time.monotonic()
            path = work / "repo" / nb
            cmd = [
                str(self.venv / "bin/python"),
                str(self.repo / "scripts/binder-rehearsal.py"),
                "execute",
                str(path),
                "--cell-timeout",
                str(self.args.cell_timeout),
            ]
            status, out, err = self.run_bounded(
                self.reader_argv(cmd, home, no_userns), self.args.notebook_timeout, path.parent
            )
            return nb, status, out, err, time.monotonic() - t

        notices = not_run = 0
        with concurrent.futures.ThreadPoolExecutor(max_workers=self.args.jobs) as pool:
            # The labs' autograder versions are written while the first notebooks run.
            labs = pool.submit(self.assign_labs, work / "repo") if no_userns else None
            runs = [pool.submit(one, nb) for nb in notebooks]
            if labs is not None:
                runs += [pool.submit(one, nb) for nb in labs.result()]
            for run in runs:
                nb, status, out, err, took = run.result()
                report = None
                for line in out.splitlines():
                    if line.startswith(REPORT_PREFIX):
                        report = json.loads(line[len(REPORT_PREFIX) :])
                if status is None:
                    verdict = [f"did not finish within {self.args.notebook_timeout} s"]
                elif report is None:
                    verdict = [
                        f"the runner failed (status {status}): " + " | ".join(err.strip().splitlines()[-5:])
                    ]
                else:
                    verdict = [
                        f"cell {p['cell']} ({p['source']!r}): {p['error']}"
                        + "".join(f"\n        {line}" for line in p["traceback"])
                        for p in report["problems"]
                    ]
                    wrong = [t for t in report["tiers"] if t not in tiers]
                    if wrong:
                        verdict.append(f"printed tier {', '.join(wrong)}, expected {' or '.join(tiers)}")
                    notices += report["notices"]
                    not_run += report.get("not_run", 0)
                extra = ""
                if report is not None:
                    tier = ",".join(report["tiers"]) or "-"
                    extra = f"tier {tier}, {report['notices']} recorded-outcome notices"
                    if report.get("not_run"):
                        extra += f", {report['not_run']} lab checks not run here"
                print(f"  {'FAIL' if verdict else 'ok  '} {nb:42s} {took:5.0f} s  {extra}")
                for v in verdict:
                    print(f"      {v}")
                    self.failures.append(f"{label}: {nb}: {v.splitlines()[0]}")
                if verdict and self.args.save_failed:
                    saved = Path(self.args.save_failed).resolve() / label.replace(" ", "-") / nb
                    saved.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(work / "repo" / nb, saved)
                    print(f"      executed notebook saved as {saved}")
        if no_userns and notices == 0:
            self.failures.append(f"{label}: no notebook showed a recorded outcome with its notice")
        if no_userns and not_run == 0:
            self.failures.append(f"{label}: no lab check said it cannot run here")
        print(f"{label}: {notices} recorded-outcome notices shown; {time.monotonic() - started:.0f} s")

    def nbval(self, label: str, work: Path, home: Path, print) -> None:  # noqa: A002
        """nbval over every notebook and lab master notebook, as the reader, in the
        environment built from binder/: each cell's output compared with the stored one."""
        repo = work / "repo"
        count = len(list(repo.glob("notebooks/*.ipynb"))) + len(list(repo.glob("labs/**/*.ipynb")))
        cmd = [
            str(self.venv / "bin/python"),
            "-m",
            "pytest",
            "--nbval",
            "notebooks",
            "labs",
            "-q",
            "-n",
            str(self.args.nbval_workers),
            "--dist",
            "loadscope",
            "--nbval-sanitize-with",
            "tests/nbval_sanitize.cfg",
            f"--nbval-cell-timeout={self.args.cell_timeout}",
            "-p",
            "no:cacheprovider",
        ]
        print(
            f"nbval: {count} notebooks (notebooks/ and the labs' master notebooks) compared "
            f"with their stored outputs, {self.args.nbval_workers} at a time"
        )
        limit = self.args.notebook_timeout * max(1, count // self.args.nbval_workers + 1)
        status, out, err = self.run_bounded(self.reader_argv(cmd, home, False), limit, repo)
        summary = next(
            (
                line
                for line in reversed(ANSI.sub("", out).strip().splitlines())
                if " passed" in line or " failed" in line or " error" in line
            ),
            "",
        )
        if status == 0:
            print(f"  ok   nbval: {summary}")
            return
        lines = ANSI.sub("", out + err).strip().splitlines()
        # the first failure in full (later cells of the same notebook often fail only because an
        # earlier one did), then the short summary
        start = next((i for i, line in enumerate(lines) if "= FAILURES =" in line), max(len(lines) - 120, 0))
        shown = lines[start : start + 150]
        rest = [line for line in lines[start + 150 :] if line.startswith(("FAILED", "ERROR"))]
        print("\n".join(f"      {line}" for line in shown + rest + lines[-1:]))
        why = f"did not finish within {limit} s" if status is None else summary or f"status {status}"
        self.failures.append(f"{label}: nbval: {why}")
        print(f"  FAIL nbval: {why}")

    def assign_labs(self, repo: Path) -> list:
        """Each lab's autograder version (reference solution and ``grader.check`` cells), as
        the Binder environment's otter writes it; paths relative to ``repo``."""
        found = []
        for master in sorted(repo.glob("labs/[0-9]*/*.ipynb")):
            if "ASSIGNMENT CONFIG" not in master.read_text():
                continue
            out = repo / "labs-assigned" / master.parent.name
            self.sh(
                [
                    str(self.venv / "bin/python"),
                    "-m",
                    "otter",
                    "assign",
                    "--no-run-tests",
                    str(master),
                    str(out),
                ],
                cwd=master.parent,
            )
            found.append(str((out / "autograder" / master.name).relative_to(repo)))
        self.give_to_reader(repo / "labs-assigned")
        return found

    def cleanup(self) -> None:
        with self.lock:
            procs = list(self.active)
        for proc in procs:
            self.stop(proc)
        # A copied directory may be read-only (as in the repository); make it removable first.
        for dirpath, _, _ in os.walk(self.tmp):
            if not os.path.islink(dirpath):
                try:
                    os.chmod(dirpath, os.stat(dirpath).st_mode | 0o700)
                except OSError:
                    pass
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self.tmp.exists():
            print(f"could not remove all of {self.tmp}")

    def main(self) -> int:
        host_limit = Path("/proc/sys/user/max_user_namespaces").read_text().strip()
        notebooks = sorted(f"notebooks/{p.name}" for p in (ROOT / "notebooks").glob("*.ipynb"))
        steps = [
            ("Python", lambda: setattr(self, "py", self.python())),
            ("apt.txt", self.apt),
            ("copy", self.copy_repository),
            ("requirements.txt", lambda: self.environment(self.py)),
            ("postBuild", self.post_build),
        ]
        for name, step in steps:
            started = time.monotonic()
            print(f"== {name}", flush=True)
            step()
            print(f"   ({time.monotonic() - started:.0f} s)", flush=True)
        # One reader after the other: the live experiments' timing (a bulk transfer that must
        # outrun the ISN clock, slab memory read machine-wide) needs the machine not crowded by
        # a second reader running notebooks beside them.
        for label, mode in MODES.items():
            self.mode_run(label, mode["no_userns"], mode["tiers"], notebooks, mode["check"])
        after = Path("/proc/sys/user/max_user_namespaces").read_text().strip()
        if after != host_limit:
            self.failures.append(f"the host's user.max_user_namespaces changed: {host_limit} -> {after}")
        print(f"\nhost user.max_user_namespaces: {after} (unchanged: {after == host_limit})")
        total = time.monotonic() - self.t0
        if self.failures:
            print(f"\nBinder rehearsal FAILED ({len(self.failures)} problems, {total:.0f} s):")
            for f in self.failures:
                print(f"  - {f}")
            return 1
        print(
            f"\nBinder rehearsal passed: {len(notebooks)} notebooks, nbval with namespaces and "
            f"a run without; total {total:.0f} s"
        )
        return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command")
    ex = sub.add_parser("execute", help="(internal) run one notebook and report on it")
    ex.add_argument("notebook")
    ex.add_argument("--cell-timeout", type=int, default=120)
    wo = sub.add_parser(
        "without-user-namespaces", help="(internal) run a command where no user namespace can be created"
    )
    wo.add_argument("cmd", nargs=argparse.REMAINDER)
    parser.add_argument(
        "--jobs", type=int, default=4, help="notebooks run at once without namespaces (default 4)"
    )
    parser.add_argument(
        "--nbval-workers",
        type=int,
        default=2,
        help="nbval workers with namespaces (default 2, one per core: live experiments time themselves)",
    )
    parser.add_argument(
        "--installer",
        choices=("auto", "pip", "uv"),
        default="auto",
        help="what installs binder/requirements.txt (default: uv if found, else pip)",
    )
    parser.add_argument(
        "--notebook-timeout", type=int, default=240, help="seconds one notebook may take (default 240)"
    )
    parser.add_argument(
        "--cell-timeout", type=int, default=120, help="seconds one cell may take (default 120)"
    )
    parser.add_argument(
        "--save-failed", metavar="DIR", help="keep the executed copy of each failing notebook in DIR"
    )
    args = parser.parse_args(argv)
    if args.command == "execute":
        execute_notebook(args.notebook, args.cell_timeout)
        return 0
    if args.command == "without-user-namespaces":
        cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
        without_user_namespaces(cmd)
    for name, value, low, high in (
        ("--jobs", args.jobs, 1, 8),
        ("--nbval-workers", args.nbval_workers, 1, 8),
        ("--notebook-timeout", args.notebook_timeout, 10, 1800),
        ("--cell-timeout", args.cell_timeout, 5, 1800),
    ):
        if not low <= value <= high:
            parser.error(f"{name}: must be between {low} and {high}, got {value}")
    rehearsal = Rehearsal(args)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, _: sys.exit(128 + signum))
    try:
        return rehearsal.main()
    finally:
        rehearsal.cleanup()
        print(f"temporary files removed; total time {time.monotonic() - rehearsal.t0:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
