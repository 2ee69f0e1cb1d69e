"""Interrupting `timewait experiment` leaves nothing behind.

A long experiment (close-wait-leak holding a queued connection for 60 s, with a server in a
forked process of its own) is started with the real command, and the `timewait` process is
sent SIGINT (Ctrl-C), SIGTERM (a closed job), SIGHUP (a closed terminal) or SIGKILL (a
notebook kernel restarted, a CI job cancelled). Within 2 s `timewait` has exited and no
process of the experiment remains; SIGINT, SIGTERM and SIGHUP end with one line naming the
step, and no traceback.
"""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parent.parent / "src")
LIMIT_S = 2.0  # a signalled timewait and the experiment's processes are gone within this
LONG = ["experiment", "close-wait-leak", "--hold", "60", "--fd-limit", "8", "--connections", "5"]


def _processes_in_group(pgid: int) -> list:
    """Live (not zombie) processes whose process group is ``pgid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, _ppid, group = stat.rsplit(")", 1)[1].split()[:3]
        if int(group) == pgid and state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def _children(pid: int) -> list:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(c) for c in text.split()]


def _default_signals() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


def _start_long_experiment(preexec=_default_signals):
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("TIMEWAIT_TIER", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "timewait.cli", *LONG],
        env=env,
        # As from a terminal: a launcher that ignores SIGINT or SIGHUP (a background job of a
        # non-interactive shell, nohup) passes that on, and an ignored signal stays ignored.
        preexec_fn=preexec,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        children = _children(proc.pid)
        # The sandbox child leads its own group; once it has forked its server, the
        # experiment is under way (and reaches its 60 s wait right after).
        if children and len(_processes_in_group(children[0])) >= 2:
            time.sleep(1.0)
            return proc, children[0]
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    out, err = proc.communicate()
    pytest.fail(f"the experiment did not get under way: {err[-2000:]}")


@pytest.mark.parametrize(
    "signum",
    [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL],
    ids=lambda s: signal.Signals(s).name,
)
def test_a_signal_to_timewait_leaves_no_process_behind(full_tier, signum):
    proc, group = _start_long_experiment()
    assert len(_processes_in_group(group)) >= 2
    proc.send_signal(signum)
    sent = time.monotonic()
    left = _processes_in_group(group)
    # The handler tears the namespace down at once: about 0.3 s here for the experiment's
    # processes and under 1 s for `timewait` itself, also beside two CPU-bound processes.
    while (left or proc.poll() is None) and time.monotonic() - sent < LIMIT_S:
        time.sleep(0.05)
        left = _processes_in_group(group)
    exited = proc.poll() is not None
    if not exited:
        proc.kill()
    out, err = proc.communicate()
    assert exited, f"timewait still running {LIMIT_S:g} s after {signal.Signals(signum).name}"
    assert left == [], f"processes of the experiment left {LIMIT_S:g} s after the signal: {left}"
    if signum == signal.SIGKILL:
        return
    assert proc.returncode == 128 + signum
    assert "Traceback" not in err
    lines = err.splitlines()
    by = "" if signum == signal.SIGINT else f" by {signal.Signals(signum).name}"
    assert len(lines) == 1, err
    assert re.fullmatch(f"timewait experiment close-wait-leak: stopped{by} during step '.+'", lines[0]), (
        lines[0]
    )
    assert out == ""


def _ignore_hangup() -> None:
    _default_signals()
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


def test_a_hangup_the_caller_ignores_stays_ignored(full_tier):
    """`nohup timewait experiment ...` outlives its terminal; SIGTERM still ends it cleanly."""
    proc, group = _start_long_experiment(preexec=_ignore_hangup)
    try:
        proc.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        assert proc.poll() is None, "timewait ended on a SIGHUP its caller ignores"
        assert len(_processes_in_group(group)) >= 2
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + signal.SIGTERM
    assert err.startswith("timewait experiment close-wait-leak: stopped by SIGTERM during step"), err
    deadline = time.monotonic() + 10
    while _processes_in_group(group) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_in_group(group) == []
