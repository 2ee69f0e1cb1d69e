"""Run one experiment body in a fresh private user+network namespace.

The parent (a notebook, the CLI, a test) starts ``unshare -rn python -m timewait.sandbox``;
that child owns a brand-new network namespace with only a loopback interface, sets the
namespace's sysctls, runs the body and prints its result as JSON. Before it exits, the child
aborts the TCP sockets the kernel still keeps for the closed ones (an orphan whose FIN is
never acknowledged would otherwise go on retransmitting for up to two minutes); then the
namespace, its nftables ruleset and its sysctls vanish with it: the host's are never touched.
A child that overruns its timeout is killed with its whole process group, and the error names
the step it was stuck in.

The child never outlives its parent. It asks the kernel for a signal when the parent ends,
however it ends (``PR_SET_PDEATHSIG``: SIGKILL of the parent included), and then kills its
own process group: itself and anything it forked. A parent interrupted by Ctrl-C
(KeyboardInterrupt) kills the group and raises :class:`ExperimentInterrupted`, naming the
step the child was in.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import math
import os
import signal
import subprocess
import sys
import traceback
from pathlib import Path

RESULT_PREFIX = "TIMEWAIT-RESULT "
ERROR_PREFIX = "TIMEWAIT-ERROR "
STEP_PREFIX = "TIMEWAIT-STEP "


class ExperimentTimeout(TimeoutError):
    """An experiment did not finish in time; the message names the step that hung."""


class ExperimentFailed(RuntimeError):
    """An experiment body raised; the message carries the child's error."""


class ExperimentInterrupted(KeyboardInterrupt):
    """The run was interrupted (Ctrl-C); its processes are gone. ``step`` is where it was."""

    def __init__(self, experiment: str, step: str):
        super().__init__(f"{experiment}: stopped during step '{step}'")
        self.experiment, self.step = experiment, step


def _child_env() -> dict:
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("PATH", "/usr/bin:/bin")
    if "/usr/sbin" not in env["PATH"].split(os.pathsep):
        env["PATH"] += os.pathsep + "/usr/sbin"
    return env


def run_body(
    target: str, params: dict, *, sysctls: dict | None = None, timeout: float = 30.0, isolated: bool = True
) -> dict:
    """Run ``target`` ("module:function") in a child process and return its result dict.

    ``isolated=True`` runs it in a private user+network namespace (full tier);
    ``isolated=False`` runs it on the host loopback, where ``sysctls`` must be empty.
    """
    if not isolated and sysctls:
        raise ValueError("sysctls: can only be set inside a private namespace (full tier)")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not (0 < timeout < math.inf):
        raise ValueError(f"timeout: must be a number of seconds, more than 0, got {timeout!r}")
    name = target.split(":")[0].rsplit(".", 1)[-1]
    cmd = [sys.executable, "-m", "timewait.sandbox", target, str(os.getpid())]
    if isolated:
        cmd = ["unshare", "-rn", "--"] + cmd
    request = json.dumps({"params": params, "sysctls": sysctls or {}, "isolated": isolated})
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_child_env(),
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(request, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, err = proc.communicate()
        step = _last_step(err)
        raise ExperimentTimeout(
            f"{name}: step '{step}' did not finish within the {timeout:g} s timeout"
        ) from None
    except KeyboardInterrupt as exc:
        _kill_group(proc)
        try:  # what the child wrote before it was killed, for the step it was in
            _, err = proc.communicate(timeout=2)
        except (subprocess.TimeoutExpired, ValueError, OSError):
            err = ""
        raise ExperimentInterrupted(name, _last_step(err or "")) from exc
    finally:
        _kill_group(proc)
    for line in out.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    for line in err.splitlines():
        if line.startswith(ERROR_PREFIX):
            info = json.loads(line[len(ERROR_PREFIX) :])
            if info["type"] == "ValueError":
                raise ValueError(info["message"])
            raise ExperimentFailed(
                f"{info['type']} in step '{info['step']}': {info['message']}\n{info['traceback']}"
            )
    raise ExperimentFailed(
        f"the experiment process exited with status {proc.returncode} "
        f"and no result; its error output was:\n{err[-3000:]}"
    )


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc.poll() is None:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def _last_step(err: str) -> str:
    steps = [line[len(STEP_PREFIX) :] for line in err.splitlines() if line.startswith(STEP_PREFIX)]
    return steps[-1] if steps else "starting"


def _end_group(signum=None, frame=None) -> None:
    os.killpg(0, signal.SIGKILL)  # this process (its group's leader) and all it started


def _die_with_parent(parent_pid: int) -> None:
    """Kill this process group when the parent ends (the parent-death signal, prctl(2))."""
    PR_SET_PDEATHSIG = 1
    signal.signal(signal.SIGTERM, _end_group)
    signal.signal(signal.SIGHUP, _end_group)
    if not sys.platform.startswith("linux"):  # no experiment runs elsewhere (tier "none")
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent_pid:  # the parent ended before the request above
        _end_group()


def _child_main(target: str, parent_pid: int | None = None) -> int:
    if parent_pid is not None:
        _die_with_parent(parent_pid)
    from timewait.lab import Lab

    request = json.loads(sys.stdin.read())
    lab = Lab(isolated=request["isolated"])
    try:
        lab.setup(request["sysctls"])
        module_name, func_name = target.split(":")
        body = getattr(importlib.import_module(module_name), func_name)
        params = dict(request["params"])
        want_frames = params.pop("capture_frames", False)
        result = body(lab, **params)
        if want_frames and lab.capture is not None:
            result["frames"] = [(f.t, f.data.hex()) for f in lab.capture.snapshot()]
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return 0
    except BaseException as exc:  # reported to the parent, which raises it there
        info = {
            "type": type(exc).__name__,
            "message": str(exc),
            "step": lab.current_step,
            "traceback": traceback.format_exc(),
        }
        print(ERROR_PREFIX + json.dumps(info), file=sys.stderr, flush=True)
        return 1
    finally:
        lab.teardown()


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else None))
