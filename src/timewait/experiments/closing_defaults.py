"""closing-defaults: the settings that govern a connection's close, as a fresh namespace has them.

Nothing is set: the experiment creates a network namespace and reads each sysctl file, so
the values are this kernel's own defaults (``None`` for a setting this kernel does not
have). The chapters quote these rather than a documentation page, which may describe
another version. ``tcp_max_tw_buckets`` is not among them: its default follows the size of
the machine's hash table of connections, so it differs from one machine to the next. The
experiment reports instead whether it is half that table (``tcp_ehash_entries``, negative in
a namespace that shares the initial namespace's table), keeping both numbers out of the
summary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .base import Experiment, ExperimentResult, register, shown
from .common import read_defaults

# What each setting decides, in the chapters' words.
CLOSING_SYSCTLS = {
    "net.ipv4.tcp_fin_timeout": "seconds an orphan waits in FIN_WAIT_2 for the peer's FIN",
    "net.ipv4.tcp_orphan_retries": "FIN retransmissions of a socket its application closed (0 means 8)",
    "net.ipv4.tcp_retries2": "retransmissions before a socket its application still holds gives up",
    "net.ipv4.tcp_rfc1337": "whether TIME_WAIT ignores a reset (RFC 1337)",
    "net.ipv4.tcp_timestamps": "whether connections negotiate timestamps (PAWS)",
    "net.ipv4.tcp_tw_reuse": "whether connect() may take over a TIME_WAIT socket's port",
}


@dataclass(kw_only=True)
class ClosingDefaultsResult(ExperimentResult):
    sysctls: dict = shown()  # name -> value as the kernel prints it, or None
    tw_buckets_half_the_hash: Optional[bool] = shown()  # None: no tcp_ehash_entries (before 6.1)
    # Machine-dependent, kept out of summary():
    max_tw_buckets: Optional[int]
    ehash_entries: Optional[int]


def body(lab) -> dict:
    sizes = read_defaults(lab, ("net.ipv4.tcp_max_tw_buckets", "net.ipv4.tcp_ehash_entries"))
    buckets, ehash = (None if v is None else int(v) for v in sizes.values())
    return {
        "sysctls": read_defaults(lab, CLOSING_SYSCTLS),
        "max_tw_buckets": buckets,
        "ehash_entries": ehash,
        "tw_buckets_half_the_hash": None if ehash is None else buckets == abs(ehash) // 2,
    }


register(
    Experiment(
        name="closing-defaults",
        summary="Read a fresh namespace's defaults for the closing states and TIME_WAIT.",
        params=(),
        body=f"{__name__}:body",
        result=ClosingDefaultsResult,
        timeout=lambda p: 20.0,
    )
)
