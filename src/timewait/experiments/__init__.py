"""Named experiments on the reader's own kernel.

``run("lost-final-ack", time_wait=False)`` runs one in a fresh private namespace and
returns a typed result; ``list_experiments()`` names them all. Where the machine cannot run
an experiment live, its recorded outcome is returned, with a one-line notice saying so.
"""

# Each module registers the experiment it is named after.
from . import (  # noqa: F401
    abortive_close,
    close_wait_leak,
    closing_defaults,
    connection_reuse,
    conntrack_time_wait,
    dual_stack_ports,
    ephemeral_ports,
    ephemeral_range_sizes,
    fin_wait_2,
    fixed_port_reconnect,
    four_way_close,
    held_last_ack,
    lost_final_ack,
    nat_port_exhaustion,
    nat_time_wait,
    old_duplicate,
    orphan_retries,
    port_defaults,
    port_exhaustion,
    proxy_is_a_client,
    reuseport_group,
    server_restart,
    time_wait_assassination,
    time_wait_reopen,
    timeout_close,
    tw_bucket_overflow,
    tw_memory,
)
from .base import REGISTRY, Experiment, ExperimentResult, Param, get, record_all, run


def list_experiments() -> list:
    """``[(name, one-line summary), ...]`` in alphabetical order."""
    return [(name, REGISTRY[name].summary) for name in sorted(REGISTRY)]


__all__ = [
    "run",
    "list_experiments",
    "get",
    "record_all",
    "Experiment",
    "ExperimentResult",
    "Param",
    "REGISTRY",
]
