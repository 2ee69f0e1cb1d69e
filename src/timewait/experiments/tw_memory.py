"""tw-memory: what a TIME_WAIT socket costs in kernel memory, next to a full socket.

The body makes ``connections`` TIME_WAIT sockets (the client closes first, one connection at
a time, so the full sockets are freed again at once), then holds the same number of open
connections (two full sockets each, plus a file and an inode each). It reads the kernel's
slab totals from ``/proc/meminfo`` before and after each of ``STEPS`` equal steps of each
phase, divides each step's growth by its sockets, and keeps the median step. ``/proc/meminfo``
is world-readable but counts the whole machine, so anything else allocating or freeing at the
same moment adds noise; many sockets per step make it small per socket, and the median leaves
out a step that another process's burst landed in. When other work moves most steps (a machine
making and removing namespaces by the dozen frees megabytes at a time), the steps disagree and
the result says so: ``steady`` is true only when four of the five steps of each phase lie
within half of that phase's median, as they do on a machine doing nothing else.
The exact object sizes (``/sys/kernel/slab/*/object_size``) are shown only when the reader may
open them: the kernel makes them readable by root alone.

``tcp_tw_reuse`` is 0 inside the namespace and the open connections go to a second port, so
no connect() takes over a TIME_WAIT port while the sockets are counted.
"""

from __future__ import annotations

import resource
import socket
import time
from dataclasses import dataclass
from typing import Optional

from .. import observe
from .base import Experiment, ExperimentResult, Param, register, shown

TIME_WAIT_PORT = 5000
OPEN_PORT = 5001
SLAB_CACHES = ("tw_sock_TCP", "TCP", "tcp_bind_bucket", "tcp_bind2_bucket")
SLAB_CACHES_V6 = ("tw_sock_TCPv6", "TCPv6", "tcp_bind_bucket", "tcp_bind2_bucket")
STEPS = 5  # steps per phase; the median step's growth per socket is the result
STEADY_STEPS = 4  # steps that must lie within STEADY_SPREAD of the median for a steady phase
STEADY_SPREAD = 0.5


@dataclass(kw_only=True)
class TimeWaitMemoryResult(ExperimentResult):
    QUIET_OPTIONS = {"family": 4}  # an IPv4 run reads as before IPv6 was an option

    time_wait_sockets: int = shown()  # TIME_WAIT count in the namespace (/proc/net/sockstat "tw")
    open_sockets: int = shown()  # full sockets held open in the second phase
    bytes_per_time_wait: float = shown()  # slab growth per TIME_WAIT socket
    bytes_per_open_socket: float = shown()  # slab growth per open (ESTABLISHED) socket
    unreclaimable_per_time_wait: float  # of which SUnreclaim
    unreclaimable_per_open_socket: float
    ratio: float = shown()  # bytes_per_open_socket / bytes_per_time_wait
    steady: bool = shown()  # the steps of both phases agreed: no other work moved the figures
    time_wait_steps: list  # each step's slab growth per TIME_WAIT socket, bytes
    open_steps: list  # each step's slab growth per open socket, bytes
    slab_readable: bool = shown()
    slab_object_sizes: dict = shown()  # cache -> bytes; empty unless root
    sockstat_time_wait: str  # the TCP line of /proc/net/sockstat after phase one
    closes_counted: dict  # TcpExt TW, TCPTimeWaitOverflow... moved


def _meminfo() -> dict:
    values = {}
    with open("/proc/meminfo") as fh:
        for line in fh:
            key, rest = line.split(":", 1)
            if key in ("Slab", "SUnreclaim"):
                values[key] = int(rest.split()[0]) * 1024
    return values


def _closing(lab) -> list:
    return [s for s in lab.sockets([TIME_WAIT_PORT]) if s.state not in ("LISTEN", "TIME_WAIT")]


def _object_sizes(caches: tuple) -> Optional[dict]:
    sizes = {}
    for cache in caches:
        try:
            with open(f"/sys/kernel/slab/{cache}/object_size") as fh:
                sizes[cache] = int(fh.read())
        except FileNotFoundError:
            continue
        except PermissionError:
            return None
    return sizes


def _median_per_socket(steps: list) -> tuple:
    """The median step's (slab bytes, unreclaimable bytes) per socket."""
    per = sorted((slab / n, unreclaimable / n) for slab, unreclaimable, n in steps if n)
    return per[len(per) // 2]


def _per_step(steps: list) -> list:
    return [round(slab / n) for slab, _, n in steps if n]


def _steady(per_step: list, median: float) -> bool:
    """Whether STEADY_STEPS of the steps lie within STEADY_SPREAD of the median."""
    near = [v for v in per_step if abs(v - median) <= STEADY_SPREAD * abs(median)]
    return median > 0 and len(near) >= STEADY_STEPS


def body(lab, connections: int, family: int = 4) -> dict:
    address = lab.use_family(family)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    tw_listener = lab.listener(TIME_WAIT_PORT, backlog=1024)
    open_listener = lab.listener(OPEN_PORT, backlog=1024)
    time.sleep(0.2)

    lab.step(f"making {connections} TIME_WAIT sockets in {STEPS} steps")
    counted_before = lab.counters()
    tw_steps, made = [], 0  # (slab growth, SUnreclaim growth, sockets) per step
    for step in range(STEPS):
        start, batch = _meminfo(), connections * (step + 1) // STEPS - made
        for _ in range(batch):
            client = socket.create_connection((address, TIME_WAIT_PORT), timeout=5)
            server, _ = tw_listener.accept()
            client.close()  # the client closes first: its side waits
            server.settimeout(5)
            server.recv(1)
            server.close()
        made += batch
        # Every close has finished when the namespace's socket table holds nothing on the port
        # but the listener and TIME_WAIT (no FIN_WAIT_1/2 client, no LAST_ACK server).
        lab.wait_for(
            lambda: not _closing(lab),
            "every close to finish (only TIME_WAIT left)",
            timeout=10.0,
            interval=0.05,
        )
        time.sleep(0.3)
        end = _meminfo()
        tw_steps.append((end["Slab"] - start["Slab"], end["SUnreclaim"] - start["SUnreclaim"], batch))
    tcp = observe.read_sockstat()["TCP"]
    time_wait = tcp["tw"]
    closes_counted = observe.counter_delta(
        counted_before, lab.counters(), ("TW", "TWKilled", "TWRecycled", "TCPTimeWaitOverflow")
    )

    pairs = min(connections, (hard - 64) // 2)
    lab.step(f"holding {pairs} connections open, in {STEPS} steps")
    held, open_steps = [], []
    for step in range(STEPS):
        start, before_step = _meminfo(), len(held)
        for _ in range(pairs * (step + 1) // STEPS - before_step // 2):
            held.append(socket.create_connection((address, OPEN_PORT), timeout=5))
            held.append(open_listener.accept()[0])
        time.sleep(0.3)
        end = _meminfo()
        batch = len(held) - before_step
        open_steps.append((end["Slab"] - start["Slab"], end["SUnreclaim"] - start["SUnreclaim"], batch))
    for s in held:
        s.close()

    per_tw, unreclaimable_tw = _median_per_socket(tw_steps)
    per_open, unreclaimable_open = _median_per_socket(open_steps)
    sizes = _object_sizes(SLAB_CACHES_V6 if family == 6 else SLAB_CACHES)
    time_wait_steps, open_steps_ = _per_step(tw_steps), _per_step(open_steps)
    return {
        "time_wait_sockets": time_wait,
        "open_sockets": len(held),
        "bytes_per_time_wait": round(per_tw),
        "bytes_per_open_socket": round(per_open),
        "unreclaimable_per_time_wait": round(unreclaimable_tw),
        "unreclaimable_per_open_socket": round(unreclaimable_open),
        "ratio": round(per_open / per_tw, 1) if per_tw > 0 else 0.0,
        "steady": _steady(time_wait_steps, per_tw) and _steady(open_steps_, per_open),
        "time_wait_steps": time_wait_steps,
        "open_steps": open_steps_,
        "slab_object_sizes": sizes or {},
        "slab_readable": sizes is not None,
        "sockstat_time_wait": "TCP: " + " ".join(f"{k} {v}" for k, v in tcp.items()),
        "closes_counted": closes_counted,
    }


register(
    Experiment(
        name="tw-memory",
        summary="Kernel memory per TIME_WAIT socket against a full socket, from slab totals.",
        params=(
            Param(
                "connections",
                int,
                8000,
                "TIME_WAIT sockets to make (and connections to hold)",
                minimum=1000,
                maximum=20000,
            ),
            Param("family", int, 4, "IP version: 4 (127.0.0.1) or 6 (::1)", choices=(4, 6)),
        ),
        body=f"{__name__}:body",
        result=TimeWaitMemoryResult,
        sysctls=lambda p: {"net.ipv4.tcp_tw_reuse": 0, "net.ipv4.ip_local_port_range": "10000 65001"},
        timeout=lambda p: 30.0 + p["connections"] / 500,
        variants=({"connections": 8000}, {"connections": 8000, "family": 6}),
    )
)
