"""Named experiments on the reader's own kernel.

``run("lost-final-ack", time_wait=False)`` runs one in a fresh private namespace and
returns a typed result; ``list_experiments()`` names them all. Where the machine cannot run
an experiment live, its recorded outcome is returned, with a one-line notice saying so.
"""
from .base import REGISTRY, Experiment, ExperimentResult, Param, get, record_all, run
from . import four_way_close  # noqa: F401  (registers itself)

_OPTIONAL = ("lost_final_ack", "old_duplicate", "port_exhaustion", "fixed_port_reconnect",
             "server_restart", "abortive_close", "time_wait_assassination", "orphan_retries",
             "fin_wait_2", "time_wait_memory", "time_wait_overflow", "close_wait_leak")
for _mod in _OPTIONAL:
    try:
        __import__(f"{__name__}.{_mod}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{_mod}":
            raise


def list_experiments() -> list:
    """``[(name, one-line summary), ...]`` in alphabetical order."""
    return [(name, REGISTRY[name].summary) for name in sorted(REGISTRY)]


__all__ = ["run", "list_experiments", "get", "record_all", "Experiment", "ExperimentResult",
           "Param", "REGISTRY"]
