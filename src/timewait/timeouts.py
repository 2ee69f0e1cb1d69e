"""A time limit for code that runs in this process (a student's function, a check)."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager


@contextmanager
def time_limit(seconds: float, what: str):
    """Raise TimeoutError if the body runs longer than ``seconds`` (main thread only:
    SIGALRM is delivered there; elsewhere the body runs unbounded)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise TimeoutError(f"{what} did not finish within {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
