"""ephemeral-range-sizes: how many connections to one destination each small
``ip_local_port_range`` allows, run after run.

For each range size from 1 to ``max_size``, ``runs`` times, connect() alone opens
connections to a fresh server port (a fresh 4-tuple, so the kernel's scan of the range starts
somewhere new) until connect() fails; each connection is closed client first, so its port
stays in TIME_WAIT. ``tcp_tw_reuse`` is 0. The result counts the connections of each run, and
the runs that used the range's top port. ``family=6`` runs it on ``::1``: IPv6's connect()
(``inet6_hash_connect()``) searches the same range with the same ``__inet_hash_connect()``.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from .base import Experiment, ExperimentResult, Param, register, shown
from .common import errno_name

SERVER_PORT = 5000
FIRST_PORT = 40000


@dataclass(kw_only=True)
class RangeSizesResult(ExperimentResult):
    QUIET_OPTIONS = {"family": 4}  # an IPv4 run reads as before IPv6 was an option

    sizes: list = shown()  # the range sizes tried, 1..max_size
    runs: int = shown()  # runs per size, each to a server port of its own
    connections: dict = shown()  # size -> connections made, one per run
    top_port_used: dict = shown()  # size -> runs that used the range's top port
    errors: dict = shown()  # size -> the errno names that ended the runs
    source_addresses: list  # the client's addresses, as its sockets gave them


def body(lab, max_size: int, runs: int, family: int = 4) -> dict:
    """For each range size, ``runs`` times: connect() alone to a fresh server port (a fresh
    4-tuple, so the scan's starting point is new) until connect() fails."""
    address = lab.use_family(family)
    kind = socket.AF_INET6 if family == 6 else socket.AF_INET
    connections, top_used, errors, sources = {}, {}, {}, set()
    server_port = SERVER_PORT
    for size in range(1, max_size + 1):
        top = FIRST_PORT + size - 1
        lab.sysctl("net.ipv4.ip_local_port_range", f"{FIRST_PORT} {top}")
        made, tops, errs = [], 0, set()
        for _ in range(runs):
            server_port += 1
            with socket.socket(kind, socket.SOCK_STREAM) as listener:
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                listener.bind((address, server_port))
                listener.listen(64)
                count, used_top = 0, False
                for _ in range(size + 1):  # one more than the range can hold
                    with socket.socket(kind, socket.SOCK_STREAM) as client:
                        client.settimeout(5)
                        try:
                            client.connect((address, server_port))
                        except OSError as exc:
                            errs.add(errno_name(exc))
                            break
                        source, port = client.getsockname()[:2]
                        sources.add(source)
                        used_top |= port == top
                        accepted, _ = listener.accept()
                        client.close()  # the client closes first: its side keeps TIME_WAIT
                        with accepted:
                            accepted.settimeout(5)
                            accepted.recv(1)
                    count += 1
                made.append(count)
                tops += used_top
        connections[str(size)], top_used[str(size)] = made, tops
        errors[str(size)] = sorted(errs)
    return {
        "sizes": list(range(1, max_size + 1)),
        "runs": runs,
        "connections": connections,
        "top_port_used": top_used,
        "errors": errors,
        "source_addresses": sorted(sources),
    }


register(
    Experiment(
        name="ephemeral-range-sizes",
        summary="How many connections to one destination each small port range allows, run after run.",
        params=(
            Param(
                "max_size",
                int,
                12,
                "largest ip_local_port_range size tried (from 1 up)",
                minimum=1,
                maximum=32,
            ),
            Param("runs", int, 20, "runs per size, each to a server port of its own", minimum=1, maximum=50),
            Param("family", int, 4, "IP version: 4 (127.0.0.1) or 6 (::1)", choices=(4, 6)),
        ),
        body=f"{__name__}:body",
        result=RangeSizesResult,
        sysctls=lambda p: {"net.ipv4.tcp_tw_reuse": 0},
        timeout=lambda p: 30.0 + p["max_size"] ** 2 * p["runs"] * 0.01,
        variants=({"max_size": 12, "runs": 20}, {"max_size": 12, "runs": 20, "family": 6}),
    )
)
