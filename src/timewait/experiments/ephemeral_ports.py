"""ephemeral-ports: which calls choose a source port, and how far one port stretches.

A client connects, round after round, to ``destinations`` servers (other
server addresses on the namespace's loopback, or other server ports), each time closing
first, so that every connection leaves a TIME_WAIT socket. ``ip_local_port_range`` holds
``ports`` ports and ``tcp_tw_reuse`` is 0, so nothing but the 4-tuples decides what may be
reused. It stops at the first call that fails and reports which call it was (``bind`` or
``connect``), its errno, and how the connections were spread over the local ports. How the
client gets its port is ``how``:

- ``connect``: connect() alone; the kernel picks the port for the whole 4-tuple.
- ``bind``: bind((127.0.0.1, 0)) first; bind() picks the port knowing nothing of the
  destination.
- ``bind-reuseaddr``: the same, with SO_REUSEADDR set before bind().
- ``bind-no-port``: bind((127.0.0.1, 0)) with IP_BIND_ADDRESS_NO_PORT set: bind() takes the
  address only and connect() picks the port, as with connect() alone.

``family=6`` runs client and servers on ``::1``. IPv6 has one loopback address, so several
destinations over IPv6 are told apart by port (``vary="port"``).
"""

from __future__ import annotations

import socket
from collections import Counter
from dataclasses import dataclass
from typing import Optional

from ..lab import ADDR, LOOPBACK
from .base import Experiment, ExperimentResult, Param, register, shown
from .common import errno_name

SERVER_PORT = 5000
FIRST_PORT = 40000
HOW = ("connect", "bind", "bind-reuseaddr", "bind-no-port")
# Python 3.11 does not name it; the value is fixed by the kernel ABI (include/uapi/linux/in.h).
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)


def destinations_for(count: int, vary: str, family: int = 4) -> list:
    """The servers a client connects to: other loopback addresses, or other ports."""
    if family == 6:
        if vary == "address" and count > 1:
            raise ValueError(
                "vary: IPv6 has one loopback address (::1), so family=6 tells "
                f"{count} destinations apart by port: vary must be 'port'"
            )
        return [(LOOPBACK[6], SERVER_PORT + i) for i in range(count)]
    if vary == "address":
        return [(f"127.0.0.{1 + i}", SERVER_PORT) for i in range(count)]
    return [(ADDR, SERVER_PORT + i) for i in range(count)]


def endpoint(address: str, port: int) -> str:
    """``127.0.0.1:5000``, or ``[::1]:5000`` for an IPv6 address."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


@dataclass(kw_only=True)
class EphemeralPortsResult(ExperimentResult):
    QUIET_OPTIONS = {"family": 4}  # an IPv4 run reads as before IPv6 was an option

    destinations: list = shown()  # "address:port" of each server
    connections: int = shown()  # connections made before the first failure
    per_destination: list = shown()
    failed_call: Optional[str] = shown()  # "bind" or "connect"
    first_error: Optional[str] = shown()  # errno name
    local_ports_used: int = shown()
    connections_per_port: list = shown()  # sorted, largest first
    source_addresses: list = shown()
    time_wait: int = shown()  # client TIME_WAIT sockets when the first call failed


def _client(how: str, family: int) -> socket.socket:
    client = socket.socket(socket.AF_INET6 if family == 6 else socket.AF_INET, socket.SOCK_STREAM)
    client.settimeout(5)
    if how == "bind-reuseaddr":
        client.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if how == "bind-no-port":  # an IP-level option that IPv6 sockets honour too
        client.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
    return client


def body(lab, ports: int, how: str, destinations: int, vary: str, family: int = 4) -> dict:
    servers = destinations_for(destinations, vary, family)
    local = lab.use_family(family)
    listeners = {}
    for address, port in servers:
        lab.step(f"listening on {endpoint(address, port)}")
        s = lab.new_socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((address, port))
        s.listen(64)
        listeners[(address, port)] = s
    per_destination = [0] * len(servers)
    used = Counter()
    sources = set()
    failed_call = first_error = None
    lab.step(f"connecting ({how}) to {len(servers)} destination(s) until a call fails")
    for _ in range(ports + 1):  # one round more than a single destination could take
        for i, server in enumerate(servers):
            call = "connect"
            with _client(how, family) as client:
                try:
                    if how != "connect":
                        call = "bind"
                        client.bind((local, 0))
                        call = "connect"
                    client.connect(server)
                except OSError as exc:
                    failed_call, first_error = call, errno_name(exc)
                    break
                source, port = client.getsockname()[:2]
                accepted, _ = listeners[server].accept()
                client.close()  # the client closes first: its side keeps TIME_WAIT
                with accepted:
                    accepted.settimeout(5)
                    accepted.recv(1)  # the client's FIN
            per_destination[i] += 1
            used[port] += 1
            sources.add(source)
        if failed_call:
            break
    server_ports = {p for _, p in servers}
    time_wait = sum(
        1
        for s in lab.sockets(server_ports)
        if s.state == "TIME_WAIT"
        and s.remote[1] in server_ports
        and FIRST_PORT <= s.local[1] < FIRST_PORT + ports
    )
    return {
        "destinations": [endpoint(a, p) for a, p in servers],
        "connections": sum(per_destination),
        "per_destination": per_destination,
        "failed_call": failed_call,
        "first_error": first_error,
        "local_ports_used": len(used),
        "connections_per_port": sorted(used.values(), reverse=True),
        "source_addresses": sorted(sources),
        "time_wait": time_wait,
    }


register(
    Experiment(
        name="ephemeral-ports",
        summary="connect() vs bind() before connect(): which call fails, and how far ports stretch.",
        params=(
            Param("ports", int, 4, "size of net.ipv4.ip_local_port_range", minimum=1, maximum=1000),
            Param("how", str, "connect", "how the client gets its source port", choices=HOW),
            Param("destinations", int, 1, "number of servers the client connects to", minimum=1, maximum=4),
            Param(
                "vary",
                str,
                "address",
                "what tells the servers apart: their address or port",
                choices=("address", "port"),
            ),
            Param("family", int, 4, "IP version: 4 (127.0.0.1) or 6 (::1)", choices=(4, 6)),
        ),
        body=f"{__name__}:body",
        result=EphemeralPortsResult,
        sysctls=lambda p: {
            "net.ipv4.ip_local_port_range": f"{FIRST_PORT} {FIRST_PORT + p['ports'] - 1}",
            "net.ipv4.tcp_tw_reuse": 0,
        },
        timeout=lambda p: 20.0 + p["ports"] * p["destinations"] * 0.02,
        variants=tuple({"ports": 4, "how": h, "destinations": d} for h in HOW for d in (1, 3))
        + (
            {"ports": 4, "how": "connect", "destinations": 3, "vary": "port"},
            {"ports": 3, "how": "bind", "destinations": 1},
            {"ports": 4, "how": "connect", "destinations": 3, "vary": "port", "family": 6},
            {"ports": 4, "how": "bind", "destinations": 3, "vary": "port", "family": 6},
        ),
    )
)
