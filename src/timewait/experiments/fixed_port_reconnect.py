"""fixed-port-reconnect: a client bound to a fixed source port closes first and reconnects.

The first connection leaves the client's port in TIME_WAIT. At once, a new socket binds the
same source port (with or without SO_REUSEADDR) and connects to the same server: the same
4-tuple. bind() refuses a port held by TIME_WAIT unless SO_REUSEADDR is set; connect() then
asks whether the TIME_WAIT socket may hand over its 4-tuple. For a socket bound explicitly,
Linux allows it whenever the old connection used timestamps (PAWS then guards the new one;
tcp_tw_reuse and its delay apply to ports the kernel picks itself). To test that, ``tw_reuse``
sets ``net.ipv4.tcp_tw_reuse`` in the namespace; unless it is given, the namespace's default
stays.

The run also looks for the sysctl files of ``net.ipv4.tcp_tw_recycle``, the option that once
let Linux cut TIME_WAIT short for peers that used timestamps (Linux 4.12 removed it), and of
``net.ipv4.tcp_tw_reuse``, which remains.

On the host tier (timestamps on, ``tw_reuse`` not given) the ports are free ones the kernel
picks on the host loopback, and counters are not reported: other host traffic moves them. A
run that sets ``tw_reuse`` never runs on the host: it shows its recording there.

``family=6`` runs client and server over IPv6, on ``::1`` (on the host tier only where the
host's ``lo`` has ``::1``). The sysctls keep their ``net.ipv4`` names: they apply to TCP over
IPv6 too.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from typing import Optional

from ..observe import counter_delta
from .base import Experiment, ExperimentResult, Param, register, shown
from .common import errno_name, host_has_ipv6_loopback

SERVER_PORT = 5000
CLIENT_PORT = 40000
TW_SYSCTLS = ("net.ipv4.tcp_tw_recycle", "net.ipv4.tcp_tw_reuse")
REUSE_COUNTERS = ("TW", "TWRecycled", "TWKilled", "PAWSActive", "TCPTimeWaitOverflow")


@dataclass(kw_only=True)
class FixedPortReconnectResult(ExperimentResult):
    QUIET_OPTIONS = {"family": 4}  # an IPv4 run reads as before IPv6 was an option

    old_state: str = shown()  # the first connection's client side after the close
    reconnect_error: Optional[str] = shown()  # errno name, None if the reconnect succeeded
    failed_at: Optional[str] = shown()  # "bind" or "connect"
    old_state_after: str = shown()  # the TIME_WAIT socket after the attempt
    counters: dict = shown()  # full tier only
    tw_sysctls: dict = shown()  # name -> "present" or "absent" on this kernel
    tw_reuse_value: Optional[int]  # tcp_tw_reuse in force: the namespace's, or the host's
    time_wait_tuple: list  # [local address, port, remote address, port] of the client's TIME_WAIT


def _host_timestamps_on() -> bool:
    try:
        with open("/proc/sys/net/ipv4/tcp_timestamps") as fh:
            return fh.read().strip() != "0"
    except OSError:
        return False


def body(lab, timestamps: bool, reuseaddr: bool, tw_reuse: Optional[int] = None, family: int = 4) -> dict:
    if not lab.isolated and not _host_timestamps_on():
        raise RuntimeError("this host has net.ipv4.tcp_timestamps=0; the host-tier run needs timestamps on")
    address = lab.use_family(family)
    # Inside the namespace fixed ports; on the host, free ports the kernel picks.
    listener = lab.listener(SERVER_PORT if lab.isolated else 0)
    server_port = listener.getsockname()[1]
    before = lab.counters()

    lab.step("first connection from a bound source port")
    first = lab.new_socket()
    if reuseaddr:
        first.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    first.bind((address, CLIENT_PORT if lab.isolated else 0))
    client_port = first.getsockname()[1]
    first.settimeout(5)
    first.connect((address, server_port))
    server = lab.track(listener.accept()[0])
    lab.step("the client closes first")
    first.close()
    server.settimeout(5)
    assert server.recv(1) == b""
    server.close()
    old_state = lab.wait_for(
        lambda: lab.state_of(client_port, server_port) == "TIME_WAIT" and "TIME_WAIT",
        "the client's TIME_WAIT",
    )
    row = next(s for s in lab.sockets([client_port]) if s.local[1] == client_port and s.state == "TIME_WAIT")

    lab.step("reconnecting at once from the same source port")
    again = lab.new_socket()
    if reuseaddr:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    error = failed_at = None
    try:
        again.bind((address, client_port))
    except OSError as exc:
        error, failed_at = errno_name(exc), "bind"
    if error is None:
        again.settimeout(5)
        try:
            again.connect((address, server_port))
        except OSError as exc:
            error, failed_at = errno_name(exc), "connect"
    tw_left = [
        s
        for s in lab.sockets([client_port])
        if s.local[1] == client_port and s.remote[1] == server_port and s.state == "TIME_WAIT"
    ]
    if error is None:
        lab.track(listener.accept()[0])
        # Leave no second TIME_WAIT behind (matters on the host): close with a reset.
        again.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        again.close()
    return {
        "old_state": old_state,
        "reconnect_error": error,
        "failed_at": failed_at,
        "old_state_after": "TIME_WAIT" if tw_left else "gone (recycled)",
        "time_wait_tuple": [*row.local, *row.remote],
        "counters": counter_delta(before, lab.counters(), REUSE_COUNTERS) if lab.isolated else {},
        "tw_sysctls": {name: "present" if lab.sysctl_exists(name) else "absent" for name in TW_SYSCTLS},
        # Read-only on the host tier: the host's value decides there.
        "tw_reuse_value": (
            int(lab.sysctl("net.ipv4.tcp_tw_reuse")) if lab.sysctl_exists("net.ipv4.tcp_tw_reuse") else None
        ),
    }


register(
    Experiment(
        name="fixed-port-reconnect",
        summary="Reconnect at once from the same bound source port after closing first.",
        params=(
            Param("timestamps", bool, True, "net.ipv4.tcp_timestamps"),
            Param("reuseaddr", bool, True, "SO_REUSEADDR on the client's sockets"),
            Param(
                "tw_reuse",
                int,
                None,
                "net.ipv4.tcp_tw_reuse in the namespace; None leaves the namespace's default",
                choices=(None, 0, 1, 2),
            ),
            Param("family", int, 4, "IP version: 4 (127.0.0.1) or 6 (::1)", choices=(4, 6)),
        ),
        body=f"{__name__}:body",
        result=FixedPortReconnectResult,
        sysctls=lambda p: {
            "net.ipv4.tcp_timestamps": 1 if p["timestamps"] else 0,
            **({} if p["tw_reuse"] is None else {"net.ipv4.tcp_tw_reuse": p["tw_reuse"]}),
        },
        timeout=lambda p: 20.0,
        # Setting tcp_tw_reuse needs the namespace: on the host such a run shows its recording.
        host_ok=lambda p: (
            p["timestamps"]
            and p["tw_reuse"] is None
            and _host_timestamps_on()
            and (p["family"] == 4 or host_has_ipv6_loopback())
        ),
        variants=tuple({"timestamps": t, "reuseaddr": r} for t in (True, False) for r in (True, False))
        # tcp_tw_reuse=0 with a bound port: timestamps alone decide.
        + tuple({"timestamps": t, "reuseaddr": True, "tw_reuse": 0} for t in (True, False))
        + ({"timestamps": True, "reuseaddr": True, "family": 6},),
    )
)
