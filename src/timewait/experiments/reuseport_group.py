"""reuseport-group: listeners that share a port with SO_REUSEPORT, and how the kernel spreads
new connections among them.

``listeners`` sockets set SO_REUSEPORT, bind 127.0.0.1:5000 and listen: together they form
one reuseport group. A socket that does not set SO_REUSEPORT then tries to bind the same
port and is refused (``EADDRINUSE``). ``connections`` clients connect from ports the kernel
picks; each listener accepts what reached it, and the experiment counts them.

The kernel does not take turns: for each SYN, ``reuseport_select_sock()``
(net/core/sock_reuseport.c) picks a member from a hash of the 4-tuple, unless a BPF program
attached to the group picks. The experiment shows it with ``repeats`` connections from each
of three fixed client ports, each closed with a reset (no TIME_WAIT) before the next: the
same 4-tuple reaches the same listener every time. ``opens`` is how much the namespace's
``ActiveOpens`` and ``PassiveOpens`` (``/proc/net/snmp``) grew over all the connections.

Not shown here: a socket joins a group only when it belongs to the same user (the same
effective UID) as the group's sockets (``inet_csk_bind_conflict()`` and
``inet_reuseport_add_sock()``). Inside an unprivileged namespace only one user is mapped, so a
second owner cannot be made; the chapter cites the source.

``family=6`` makes the group and its clients over IPv6, on ``[::1]:5000``.
"""

from __future__ import annotations

import errno
import socket
import struct
from dataclasses import dataclass

from ..observe import counter_delta
from .base import Experiment, ExperimentResult, Param, register, shown

SERVER_PORT = 5000
FIXED_PORTS = (40001, 40002, 40003)


@dataclass(kw_only=True)
class ReuseportGroupResult(ExperimentResult):
    QUIET_OPTIONS = {"family": 4}  # an IPv4 run reads as before IPv6 was an option

    listeners: int = shown()  # members of the group that listen
    connections: int = shown()
    accepted: list  # connections each listener accepted
    every_listener_accepted: bool = shown()
    bind_without_reuseport: str = shown()  # a socket without SO_REUSEPORT binding the port
    fixed_port_listeners: dict  # client port -> listener indexes
    same_tuple_same_listener: bool = shown()  # every fixed port's connections met one listener
    opens: dict  # Tcp:ActiveOpens and Tcp:PassiveOpens, increase
    listening_on: list  # "address:port" of each listening socket, from the socket table


def _member(lab) -> socket.socket:
    s = lab.new_socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind((lab.address, SERVER_PORT))
    return s


def _bind_plain(lab) -> str:
    s = lab.new_socket()
    try:
        s.bind((lab.address, SERVER_PORT))
        return "ok"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))
    finally:
        s.close()


def _accept_all(listeners: list) -> list:
    """Accept every queued connection on each listener: ``[[sock, ...], ...]``."""
    got = []
    for lst in listeners:
        mine = []
        while True:
            try:
                conn, _ = lst.accept()
            except BlockingIOError:
                break
            mine.append(conn)
        got.append(mine)
    return got


def _first_accepted(listeners: list):
    """``(index, [sock])`` of the listener that accepted the one pending connection."""
    for i, socks in enumerate(_accept_all(listeners)):
        if socks:
            return i, socks
    return None


def _reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def body(lab, listeners: int, connections: int, repeats: int, family: int = 4) -> dict:
    lab.use_family(family)
    lab.step(f"{listeners} sockets with SO_REUSEPORT listen on port {SERVER_PORT}")
    group = [_member(lab) for _ in range(listeners)]
    for s in group:
        s.listen(connections)
        s.setblocking(False)
    lab.step("a socket without SO_REUSEPORT binds the same port")
    plain = _bind_plain(lab)
    listening = sorted(
        f"{s.local[0]}:{s.local[1]}" for s in lab.sockets([SERVER_PORT]) if s.state == "LISTEN"
    )
    before = lab.counters()

    lab.step(f"{connections} clients connect")
    clients = [lab.connect(SERVER_PORT) for _ in range(connections)]
    for c in clients:
        c.sendall(b"x")  # the handshake is complete before anything is accepted

    def all_queued() -> list:
        got = _accept_all(group)
        for i, socks in enumerate(got):
            accepted[i] += socks
        return sum(map(len, accepted)) >= connections

    accepted = [[] for _ in group]
    lab.wait_for(all_queued, "every connection to be accepted", timeout=10, interval=0.01)
    counts = [len(a) for a in accepted]
    for c in clients:
        _reset(c)
    for socks in accepted:
        for s in socks:
            s.close()

    lab.step(f"{repeats} connections from each of {len(FIXED_PORTS)} fixed client ports")
    chosen: dict = {}
    for port in FIXED_PORTS:
        for _ in range(repeats):
            c = lab.connect(SERVER_PORT, src_port=port)
            i, socks = lab.wait_for(
                lambda: _first_accepted(group), "the connection to be accepted", timeout=5, interval=0.005
            )
            chosen.setdefault(str(port), []).append(i)
            _reset(c)
            for s in socks:
                s.close()
    return {
        "listeners": listeners,
        "connections": connections,
        "accepted": counts,
        "every_listener_accepted": all(counts),
        "bind_without_reuseport": plain,
        "fixed_port_listeners": chosen,
        "same_tuple_same_listener": all(len(set(v)) == 1 for v in chosen.values()),
        "listening_on": listening,
        "opens": counter_delta(before, lab.counters(), ("Tcp:ActiveOpens", "Tcp:PassiveOpens")),
    }


register(
    Experiment(
        name="reuseport-group",
        summary="Listeners sharing a port with SO_REUSEPORT: the kernel spreads connections by a "
        "hash of the 4-tuple.",
        params=(
            Param("listeners", int, 4, "sockets in the SO_REUSEPORT group", minimum=2, maximum=8),
            Param(
                "connections", int, 200, "connections from ports the kernel picks", minimum=8, maximum=1000
            ),
            Param("repeats", int, 5, "connections from each fixed client port", minimum=2, maximum=20),
            Param("family", int, 4, "IP version: 4 (127.0.0.1) or 6 (::1)", choices=(4, 6)),
        ),
        body=f"{__name__}:body",
        result=ReuseportGroupResult,
        timeout=lambda p: 20 + p["connections"] * 0.05,
        variants=({}, {"listeners": 2, "connections": 50}, {"family": 6}),
    )
)
