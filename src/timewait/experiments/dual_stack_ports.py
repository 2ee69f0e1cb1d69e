"""dual-stack-ports: do IPv4 and IPv6 connections to the same server port draw on one
ephemeral-port budget?

The namespace's ``net.ipv4.ip_local_port_range`` (which IPv6 connections use too) holds
``ports`` ports. The server listens on port 5000 twice, on 127.0.0.1 and on ::1. The client
connects over IPv4 (``first=4``) or IPv6 (``first=6``) until connect() fails, then over the
other family until that fails too, then once more over the first. ``hold`` keeps every
connection open (``established``) or closes each one client first, leaving its port in
TIME_WAIT (``time-wait``). ``bind_first`` makes the client call ``bind((address, 0))`` before
connect(), so the kernel picks the port at bind() instead. ``mapped`` makes the IPv6 socket
connect to ``::ffff:127.0.0.1``, the IPv4 address written as an IPv4-mapped IPv6 address: the
socket is AF_INET6, the connection is IPv4 (to the 127.0.0.1 listener).

``shared_ports`` lists the local port numbers that an IPv4 and an IPv6 socket of the client
held at the same time, read from the namespace's socket table at the end. The lab's socket
table writes an IPv4-mapped address in its IPv4 form, so a mapped client's sockets count
under "4" there; ``mapped_rows`` counts the client's rows that the kernel lists in
``/proc/net/tcp6`` with an IPv4-mapped address, that is, sockets the kernel keeps as AF_INET6.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Optional

from ..lab import LOOPBACK
from ..observe import read_proc_text, ss_text
from .base import Experiment, ExperimentResult, Param, register, shown
from .common import errno_name

SERVER_PORT = 5000
FIRST_PORT = 40000
HOLD = ("time-wait", "established")
MAPPED = "::ffff:" + LOOPBACK[4]  # 127.0.0.1 as an IPv4-mapped IPv6 address


@dataclass(kw_only=True)
class DualStackPortsResult(ExperimentResult):
    range_size: int = shown()  # ports in ip_local_port_range
    first_connections: int = shown()  # over the first family, until its connect() failed
    first_error: Optional[str] = shown()  # errno name of that failure (call in failed_call)
    second_connections: int = shown()  # then over the other family
    second_error: Optional[str] = shown()
    first_again_connections: int = shown()  # then over the first family once more (0 or 1)
    first_again_error: Optional[str] = shown()
    failed_call: Optional[str] = shown()  # "connect" or "bind": the call that failed first
    shared_ports: list = shown()  # held by an IPv4 and an IPv6 socket at once
    client_states: dict = shown()  # "4"/"6" -> {state: count} at the end
    ports_by_family: dict  # "4"/"6" -> sorted local ports
    socket_table: str = shown()  # the client's sockets at the end, ss-like, without timers
    mapped_rows: Optional[int] = shown(default=None, when="mapped")  # see the module's docstring

    QUIET_OPTIONS = {"mapped": False}  # a run without mapped reads as before the option


class _CallFailed(Exception):
    def __init__(self, call: str, exc: OSError):
        super().__init__(call)
        self.call = call
        self.errno_name = errno_name(exc)


def _connect(lab, listener, family: int, hold: str, bind_first: bool, address: str) -> None:
    """One connection over a ``family`` socket to ``address``; with ``hold="time-wait"``
    closed client first."""
    client = lab.track(socket.socket(socket.AF_INET6 if family == 6 else socket.AF_INET, socket.SOCK_STREAM))
    client.settimeout(5)
    call = "bind"
    try:
        if bind_first:
            client.bind((address, 0))
        call = "connect"
        client.connect((address, SERVER_PORT))
    except OSError as exc:
        client.close()
        raise _CallFailed(call, exc) from None
    server, _ = listener.accept()
    lab.track(server)
    if hold == "time-wait":
        client.close()
        server.settimeout(5)
        assert server.recv(1) == b""  # the client's FIN
        server.close()


def _until_failure(
    lab, listener, family: int, hold: str, bind_first: bool, limit: int, address: str
) -> tuple:
    """Connect a ``family`` socket to ``address`` until a call fails (at most ``limit``
    times): ``(connections made, the failure or None)``."""
    made = 0
    lab.step(f"connecting over IPv{family} to {address} until a call fails")
    while made < limit:
        try:
            _connect(lab, listener, family, hold, bind_first, address)
        except _CallFailed as exc:
            return made, exc
        made += 1
    return made, None


def _mapped_rows() -> int:
    """Rows of /proc/net/tcp6 from an IPv4-mapped local address to the server port."""
    text = read_proc_text("/proc/net/tcp6") or ""
    return sum(
        1
        for row in text.splitlines()[1:]
        if row.split()[1].startswith("0000000000000000FFFF0000")
        and row.split()[2].endswith(f":{SERVER_PORT:04X}")
    )


def body(lab, ports: int, first: int, hold: str, bind_first: bool, mapped: bool = False) -> dict:
    listeners = {}
    for family in (4, 6):
        lab.use_family(family)
        listeners[family] = lab.listener(SERVER_PORT, backlog=64)
    # where each family's sockets connect, and the listener that accepts them
    to = {
        4: (LOOPBACK[4], listeners[4]),
        6: (MAPPED, listeners[4]) if mapped else (LOOPBACK[6], listeners[6]),
    }
    second = 6 if first == 4 else 4
    limit = 2 * ports + 2  # more than both families together could ever take
    made1, fail1 = _until_failure(lab, to[first][1], first, hold, bind_first, limit, to[first][0])
    made2, fail2 = _until_failure(lab, to[second][1], second, hold, bind_first, limit, to[second][0])
    made3, fail3 = _until_failure(lab, to[first][1], first, hold, bind_first, 1, to[first][0])

    mine = [s for s in lab.sockets([SERVER_PORT]) if s.remote[1] == SERVER_PORT]
    by_family: dict = {"4": set(), "6": set()}
    states: dict = {"4": {}, "6": {}}
    for s in mine:
        key = "6" if ":" in s.local[0] else "4"
        by_family[key].add(s.local[1])
        states[key][s.state] = states[key].get(s.state, 0) + 1
    mine.sort(key=lambda s: (s.local[1], ":" in s.local[0]))
    failures = [f for f in (fail1, fail2, fail3) if f is not None]
    return {
        "range_size": ports,
        "first_connections": made1,
        "first_error": fail1.errno_name if fail1 else None,
        "second_connections": made2,
        "second_error": fail2.errno_name if fail2 else None,
        "first_again_connections": made3,
        "first_again_error": fail3.errno_name if fail3 else None,
        "failed_call": failures[0].call if failures else None,
        "shared_ports": sorted(by_family["4"] & by_family["6"]),
        "client_states": states,
        "ports_by_family": {k: sorted(v) for k, v in by_family.items()},
        "socket_table": ss_text(mine, timers=False),
        "mapped_rows": _mapped_rows() if mapped else None,
    }


register(
    Experiment(
        name="dual-stack-ports",
        summary="Exhaust the ephemeral ports over IPv4, then connect over IPv6: one budget or two?",
        params=(
            Param("ports", int, 4, "size of net.ipv4.ip_local_port_range", minimum=2, maximum=100),
            Param("first", int, 4, "the IP version that connects first", choices=(4, 6)),
            Param(
                "hold",
                str,
                "time-wait",
                "close each connection client first (time-wait) or keep it open (established)",
                choices=HOLD,
            ),
            Param("bind_first", bool, False, "bind((address, 0)) before connect()"),
            Param("mapped", bool, False, f"the IPv6 socket connects to {MAPPED} (an IPv4 connection)"),
        ),
        body=f"{__name__}:body",
        result=DualStackPortsResult,
        sysctls=lambda p: {"net.ipv4.ip_local_port_range": f"{FIRST_PORT} {FIRST_PORT + p['ports'] - 1}"},
        timeout=lambda p: 20.0 + p["ports"] * 0.1,
        variants=(
            {},
            {"first": 6},
            {"hold": "established"},
            {"bind_first": True},
            {"mapped": True},
            {"mapped": True, "first": 6},
        ),
    )
)
