"""port-exhaustion: a client that closes first runs out of ephemeral ports.

The client connects again and again to one server address and port, letting the kernel
choose the source port from ``ip_local_port_range`` (``ports`` of them), and closes each
connection first, so each one leaves a TIME_WAIT socket on the client. When every port holds
one, the next connection fails. Then the client keeps trying, for a bounded time, to see
whether ``net.ipv4.tcp_tw_reuse`` lets it take over a TIME_WAIT port (it needs timestamps,
and waits ``tcp_tw_reuse_delay`` ms after the TIME_WAIT began).

``bind_first`` makes the client call ``bind((address, 0))`` before ``connect()``, as an
application that chooses its source address does; ``address`` moves client and server from
``127.0.0.1`` to ``192.0.2.1``, an address the namespace's ``lo`` is given, which is not a
loopback address in the sense of ``tcp_tw_reuse=2``; ``bind_to_lo`` binds the client's
sockets to ``lo`` (SO_BINDTODEVICE), which ``tcp_tw_reuse=2`` counts as loopback whatever the
address. ``family=6`` runs client and server on ``::1`` (``address`` keeps its default then).

Measured, not assumed: with ``ports=3`` only 2 connections succeed. connect()'s port search
(``__inet_hash_connect()`` in ``net/ipv4/inet_hashtables.c``) rounds the range size down to an
even number (``remaining &= ~1U``) and walks it in steps of two from an even offset, then from
the odd one, so the third port of a 3-port range is never tried.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Optional

from ..lab import ADDR
from ..observe import counter_delta
from .base import Experiment, ExperimentResult, Param, register, shown
from .common import errno_name

SERVER_PORT = 5000
FIRST_PORT = 40000
OTHER_ADDRESS = "192.0.2.1"  # TEST-NET-1 (RFC 5737): an address that is not 127.0.0.0/8
REUSE_COUNTERS = ("TW", "TWRecycled", "TWKilled", "TCPTimeWaitOverflow")


@dataclass(kw_only=True)
class PortExhaustionResult(ExperimentResult):
    QUIET_OPTIONS = {"family": 4}  # an IPv4 run reads as before IPv6 was an option

    connections_before_exhaustion: int = shown()
    failed_call: Optional[str] = shown()  # "bind" or "connect": the call that failed first
    first_error: Optional[str] = shown()  # errno name of the first failure
    time_wait_at_exhaustion: int = shown()  # client TIME_WAIT sockets when the first call failed
    recovered_after_s: Optional[float] = shown()  # to the nearest 0.5 s; None: not within the wait
    retry_limit_s: float = shown()  # how long the client would keep trying
    counters: dict = shown()
    recovered_exact_s: Optional[float]  # not shown: timing detail


def _wait_limit(reuse_delay_ms: int) -> float:
    return round(max(2.0, reuse_delay_ms / 1000 + 1.5), 1)


class _CallFailed(Exception):
    def __init__(self, call: str, exc: OSError):
        super().__init__(call)
        self.call = call
        self.errno_name = errno_name(exc)


def _one_connection(
    listener, address: str, bind_first: bool, bind_to_lo: bool = False, family: int = 4
) -> None:
    """Open a connection, then close it client first: the client's port is left in TIME_WAIT.
    Raises _CallFailed naming the call (bind or connect) that failed."""
    with socket.socket(socket.AF_INET6 if family == 6 else socket.AF_INET, socket.SOCK_STREAM) as client:
        client.settimeout(5)
        if bind_to_lo:  # SO_BINDTODEVICE: the socket, and its TIME_WAIT socket, belong to lo
            client.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"lo")
        if bind_first:
            try:
                client.bind((address, 0))
            except OSError as exc:
                raise _CallFailed("bind", exc) from None
        try:
            client.connect((address, SERVER_PORT))
        except OSError as exc:
            raise _CallFailed("connect", exc) from None
        server, _ = listener.accept()
        client.close()
        with server:
            server.settimeout(5)
            assert server.recv(1) == b""  # the client's FIN


def body(
    lab,
    ports: int,
    tw_reuse: int,
    timestamps: bool,
    reuse_delay_ms: int,
    address: str = ADDR,
    bind_first: bool = False,
    bind_to_lo: bool = False,
    family: int = 4,
) -> dict:
    if family == 6:
        if address != ADDR:
            raise ValueError(f"address: family=6 runs on ::1, so address must stay {ADDR}, got {address!r}")
        address = lab.use_family(6)
    elif address != ADDR:
        lab.add_address(address)
    lab.step(f"listening on {address}:{SERVER_PORT}")
    listener = lab.new_socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((address, SERVER_PORT))
    listener.listen(64)
    before = lab.counters()
    made, failure = 0, None
    lab.step(f"connecting until the {ports} ephemeral port(s) run out")
    while made <= ports:
        try:
            _one_connection(listener, address, bind_first, bind_to_lo, family)
        except _CallFailed as exc:
            failure = exc
            break
        made += 1
    failed_at = time.monotonic()
    time_wait = sum(
        1 for s in lab.sockets([SERVER_PORT]) if s.state == "TIME_WAIT" and s.remote[1] == SERVER_PORT
    )
    limit = _wait_limit(reuse_delay_ms)
    recovered = None
    lab.step(f"retrying for up to {limit:g} s")
    while failure and time.monotonic() - failed_at < limit:
        try:
            _one_connection(listener, address, bind_first, bind_to_lo, family)
            recovered = time.monotonic() - failed_at
            break
        except _CallFailed:
            time.sleep(0.02)
    return {
        "connections_before_exhaustion": made,
        "failed_call": failure.call if failure else None,
        "first_error": failure.errno_name if failure else None,
        "time_wait_at_exhaustion": time_wait,
        "recovered_after_s": None if recovered is None else round(recovered * 2) / 2,
        "recovered_exact_s": recovered,
        "retry_limit_s": limit,
        "counters": counter_delta(before, lab.counters(), REUSE_COUNTERS),
    }


register(
    Experiment(
        name="port-exhaustion",
        summary="Connect and close client-first until TIME_WAIT holds every ephemeral port.",
        params=(
            Param("ports", int, 10, "size of net.ipv4.ip_local_port_range", minimum=1, maximum=1000),
            Param(
                "tw_reuse",
                int,
                2,
                "net.ipv4.tcp_tw_reuse (0 off, 1 on, 2 loopback only)",
                minimum=0,
                maximum=2,
            ),
            Param("timestamps", bool, True, "net.ipv4.tcp_timestamps"),
            Param("reuse_delay_ms", int, 1000, "net.ipv4.tcp_tw_reuse_delay, ms", minimum=1, maximum=10000),
            Param(
                "address",
                str,
                ADDR,
                "address of client and server (192.0.2.1 is not loopback)",
                choices=(ADDR, OTHER_ADDRESS),
            ),
            Param("bind_first", bool, False, "bind((address, 0)) before connect()"),
            Param(
                "bind_to_lo", bool, False, "bind the client's sockets to the lo interface (SO_BINDTODEVICE)"
            ),
            Param("family", int, 4, "IP version: 4 (127.0.0.1) or 6 (::1)", choices=(4, 6)),
        ),
        body=f"{__name__}:body",
        result=PortExhaustionResult,
        sysctls=lambda p: {
            "net.ipv4.ip_local_port_range": f"{FIRST_PORT} {FIRST_PORT + p['ports'] - 1}",
            "net.ipv4.tcp_tw_reuse": p["tw_reuse"],
            "net.ipv4.tcp_timestamps": 1 if p["timestamps"] else 0,
            "net.ipv4.tcp_tw_reuse_delay": p["reuse_delay_ms"],
        },
        timeout=lambda p: 20.0 + p["ports"] * 0.02 + _wait_limit(p["reuse_delay_ms"]),
        variants=tuple(
            {"ports": 10, "tw_reuse": r, "timestamps": t, "reuse_delay_ms": 1000}
            for r in (0, 1, 2)
            for t in (True, False)
        )
        + (
            {"ports": 10, "tw_reuse": 1, "timestamps": True, "reuse_delay_ms": 3000},
            {"ports": 3, "tw_reuse": 0},
            {"ports": 10, "tw_reuse": 2, "address": OTHER_ADDRESS},
            {"ports": 10, "tw_reuse": 1, "address": OTHER_ADDRESS},
            {"ports": 10, "tw_reuse": 2, "address": OTHER_ADDRESS, "bind_to_lo": True},
            {"ports": 10, "tw_reuse": 1, "bind_first": True},
            {"ports": 4, "tw_reuse": 0, "family": 6},
            {"ports": 4, "tw_reuse": 2, "family": 6},
        ),
    )
)
