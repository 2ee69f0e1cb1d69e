"""What every lab's support module needs: run a student's function in a private namespace,
report a crash in it as the student's own mistake, and say plainly when a check cannot run
on this machine.

The labs' support modules (``labs/NN-name/*_lab.py``) are shipped to students beside their
notebook; they import from here so that each stays a few lines long.

- ``lab_tier()`` prints, at the top of each lab, what this machine can run.
- ``run_student(...)`` sends a function written in the notebook to a fresh private network
  namespace (``dill``), calls it there through a harness of the lab's, and returns what the
  harness observed. A check that needs a namespace on a machine without them raises
  ``CannotRunHere``: the grader reports such a check as *not run*, neither passed nor failed.
- A crash in the student's code is raised as ``StudentCodeError``: the student's own frames
  and the step that was running, without the sandbox's machinery around them.
"""

from __future__ import annotations

import os
import traceback

from timewait.tiers import detect_tier
from timewait.timeouts import time_limit  # noqa: F401  (the labs import it from here)

# Where a check that cannot run here does run.
WHERE_TO_RUN = (
    "when your notebook is graded (GitHub Classroom's runner allows namespaces), "
    "or on a Linux machine where `unshare -rn true` works"
)


class CannotRunHere(Exception):
    """A check needs what this machine does not offer. Not a failure of the answer."""


class StudentCodeError(Exception):
    """The student's function raised inside the experiment."""


def lab_tier() -> str:
    """One paragraph for the top of a lab: what this machine can run, in plain words."""
    tier = detect_tier()
    if tier.at_least("full"):
        return (
            "This machine runs every check of this lab live: private user+network namespaces are available."
        )
    return (
        f"This machine cannot run the checks that need a private network namespace "
        f'({tier.reason}). Those checks will say "cannot run here": they are neither '
        f"passed nor failed, and they run {WHERE_TO_RUN}. The other checks run as usual."
    )


def require_namespace(what: str) -> None:
    """Raise ``CannotRunHere`` unless private namespaces are available."""
    tier = detect_tier()
    if not tier.at_least("full"):
        raise CannotRunHere(
            f"cannot run here: {what} needs a private network namespace, which "
            f"this machine does not give ({tier.reason}). Not run here, so "
            f"neither passed nor failed; it runs {WHERE_TO_RUN}."
        )


def _lab_dir_importable(module_file: str) -> None:
    """Let the namespace's process import the lab's support module."""
    here = os.path.dirname(os.path.abspath(module_file))
    path = os.environ.get("PYTHONPATH", "")
    if here not in path.split(os.pathsep):
        os.environ["PYTHONPATH"] = here + (os.pathsep + path if path else "")


def run_in_namespace(
    module_file: str, body: str, what: str, *, sysctls=None, timeout: float = 30.0, **params
) -> dict:
    """Run ``body(lab, **params)`` of the lab module ``module_file`` in a fresh private
    namespace and return its result dict; ``what`` names it for the reader."""
    from timewait.sandbox import run_body

    require_namespace(what)
    _lab_dir_importable(module_file)
    module = os.path.splitext(os.path.basename(module_file))[0]
    return run_body(f"{module}:{body}", params, sysctls=sysctls, timeout=timeout)


def run_student(
    module_file: str, harness: str, func, what: str, *, sysctls=None, timeout: float = 30.0, **params
) -> dict:
    """Run ``harness(lab, payload, **params)`` of the lab module ``module_file`` in a fresh
    private namespace, with ``func`` serialised into ``payload``; return its result dict.

    ``what`` names the experiment for the reader ("your churning_client").
    """
    import dill

    payload = dill.dumps(func, recurse=True).hex()
    result = run_in_namespace(
        module_file, harness, what, sysctls=sysctls, timeout=timeout, payload=payload, **params
    )
    crash = result.get("student_error")
    if crash:
        raise StudentCodeError(
            f"{crash['function']} raised {crash['type']}: {crash['message']}\n"
            f"while the experiment was at step '{crash['step']}'. Where, in your code:\n"
            f"{crash['where']}"
        )
    return result


def call_student(lab, func, *args, **kwargs):
    """Inside the namespace: call the student's function. Returns ``(value, None)``, or
    ``(None, crash)`` with a description of the exception for ``run_student`` to raise."""
    try:
        return func(*args, **kwargs), None
    except Exception as exc:  # noqa: BLE001 (any mistake in the student's code)
        return None, describe_crash(exc, func, lab.current_step)


def describe_crash(exc: BaseException, func, step: str) -> dict:
    """The student's frames of ``exc``'s traceback, without the library's or Python's."""
    frames = traceback.extract_tb(exc.__traceback__)
    skip = (
        os.path.dirname(os.path.abspath(__file__)),
        os.path.dirname(os.__file__),
        "/site-packages/",
        "/dist-packages/",
    )
    own = [
        f
        for f in frames
        if not any(part in os.path.abspath(f.filename) for part in skip)
        and not f.filename.endswith("_lab.py")
    ]
    shown = own or frames[-1:]
    lines = []
    for f in shown:
        code = f" -> {f.line.strip()}" if f.line else ""
        lines.append(f"  line {f.lineno} of {f.name}(){code}")
    if frames and shown[-1] is not frames[-1]:
        last = frames[-1]
        lines.append(f"  (raised inside {last.name}() of {os.path.basename(last.filename)})")
    return {
        "function": getattr(func, "__name__", "your function"),
        "type": type(exc).__name__,
        "message": str(exc) or "(no message)",
        "step": step,
        "where": "\n".join(lines),
    }
