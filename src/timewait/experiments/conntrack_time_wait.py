"""conntrack-time-wait: a router's connection tracking keeps a TIME_WAIT of its own.

One connection from ``client`` (10.0.1.2, port 40000) to ``server`` (10.0.100.2, port 80)
crosses ``router``, which forwards and tracks connections (:func:`timewait.topology.routed`).
``closer`` closes first; then the run reads, side by side, the hosts' socket tables and the
router's conntrack entry for the 4-tuple: its state, and how long until it expires.

``ct_time_wait`` sets the router's ``net.netfilter.nf_conntrack_tcp_timeout_time_wait``
(None leaves the namespace's default). ``watch`` seconds: the run keeps reading both
sides until then, and reports when the entry left the table and what the closer's socket
was doing at that moment. ``reopen``: the server closes first, and the client at once
connects again from the same port (after ``REOPEN_AFTER`` s), so a new SYN meets the
router's TIME_WAIT entry for that very 4-tuple. The router stamps its entries with their
creation time (``nf_conntrack_timestamp``), so the run can tell a new entry from the old one.

``family=6`` runs the connection over the hosts' IPv6 addresses (fd00:1::2 to fd00:100::2).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Optional

from .. import conntrack
from ..topology import routed
from .base import Experiment, ExperimentResult, Param, register, shown
from .common import close_after_eof

SERVER_PORT = 80
CLIENT_PORT = 40000
CT_SYSCTL = "net.netfilter.nf_conntrack_tcp_timeout_time_wait"
REOPEN_AFTER = 2.0  # s: the old entry's age (whole seconds) has moved on by then


@dataclass(kw_only=True)
class ConntrackTimeWaitResult(ExperimentResult):
    end_states: dict = shown()  # host -> its socket's RFC 9293 state
    time_wait_side: Optional[str] = shown()  # the host whose socket holds TIME_WAIT
    socket_timer_s: Optional[int] = shown()  # that socket's TIME_WAIT timer, s, rounded up
    conntrack_state: str = shown()  # the router's entry for the 4-tuple, after the close
    conntrack_time_wait_s: int = shown()  # the router's nf_conntrack_tcp_timeout_time_wait
    conntrack_timer_matches_sysctl: bool = shown()  # entry's timeout within 2 s below it
    conntrack_timer_s: int  # the entry's remaining timeout as first read (not shown)
    conntrack_table: str = shown()  # the router's table just after the close
    conntrack_access: str  # owner and mode of the router's /proc/net/nf_conntrack
    # With watch only (None without it, or if the entry outlived the watch):
    entry_gone_after_s: Optional[int] = shown(default=None)  # whole seconds after the close
    closer_socket_when_gone: Optional[str] = shown(default=None)  # the closer's socket at that moment
    # With reopen only (without it: None, and an empty table):
    reopen_connected: Optional[bool] = shown(default=None)
    reopen_entry_state: Optional[str] = shown(default=None)  # the router's entry once the new one is open
    reopen_entries: Optional[int] = shown(default=None)  # entries for the 4-tuple then
    reopen_entry_is_new: Optional[bool] = shown(default=None)  # younger than the old one would be by then
    reopen_conntrack_table: str = shown(default="")
    samples: list = field(default_factory=list)  # watch: [t, closer socket state, entry state]
    host_pids: list  # the hosts' processes (gone after the run)


def _state(topo, host: str, local_port: int, remote_port: int) -> str:
    for s in topo.sockets(host, [local_port]):
        if s.local[1] == local_port and s.remote[1] == remote_port:
            return s.state
    return "CLOSED"


def _entry(topo) -> Optional[conntrack.Entry]:
    found = [
        e for e in topo.conntrack("router") if e.original[1] == CLIENT_PORT and e.original[3] == SERVER_PORT
    ]
    return found[0] if found else None


def body(lab, closer: str, ct_time_wait: Optional[int], watch: float, reopen: bool, family: int) -> dict:
    if reopen and closer != "server":
        raise ValueError(
            "reopen: needs closer='server' (the client's own TIME_WAIT would "
            "keep its port), got closer='client'"
        )
    topo = lab.topology()
    net = routed(topo)
    if ct_time_wait is not None:
        topo.sysctl("router", CT_SYSCTL, ct_time_wait)
    ct_sysctl = int(topo.sysctl("router", CT_SYSCTL))
    topo.sysctl("router", "net.netfilter.nf_conntrack_timestamp", 1)  # entries show their age
    lab.capture = topo.capture("router", net.outside_iface)
    listener = topo.listener("server", net.server(family), SERVER_PORT)
    client = topo.connect("client", net.server(family), SERVER_PORT, src_port=CLIENT_PORT)
    server, _ = listener.accept()
    lab.step("exchanging a request and a reply")
    client.sendall(b"request\n")
    assert server.recv(100) == b"request\n"
    server.sendall(b"reply\n")
    assert client.recv(100) == b"reply\n"

    hosts = {"client": (client, CLIENT_PORT, SERVER_PORT), "server": (server, SERVER_PORT, CLIENT_PORT)}
    passive = "server" if closer == "client" else "client"
    lab.step(f"{closer} closes")
    hosts[closer][0].close()
    close_after_eof(hosts[passive][0])
    closed_at = time.monotonic()
    lab.wait_for(
        lambda: (
            _state(topo, closer, *hosts[closer][1:]) == "TIME_WAIT"
            and _state(topo, passive, *hosts[passive][1:]) == "CLOSED"
            and (_entry(topo) or conntrack.Entry(4, "", 0, (), (), False, False)).state == "TIME_WAIT"
        ),
        "the closer's TIME_WAIT, the peer's close and the router's TIME_WAIT entry",
    )
    entry = _entry(topo)
    tw = [s for s in topo.sockets(closer, [hosts[closer][1]]) if s.state == "TIME_WAIT"]
    out = {
        "end_states": {h: _state(topo, h, *hosts[h][1:]) for h in ("client", "server")},
        "time_wait_side": closer,
        "socket_timer_s": math.ceil(tw[0].expires_s),
        "conntrack_state": entry.state,
        "conntrack_time_wait_s": ct_sysctl,
        "conntrack_timer_s": entry.timeout_s,
        "conntrack_timer_matches_sysctl": ct_sysctl - 2 <= entry.timeout_s <= ct_sysctl,
        "conntrack_table": conntrack.table_text([entry]),
        "conntrack_access": topo.conntrack_access("router"),
    }

    if watch:
        lab.step(f"watching the socket and the entry for {watch:g} s")
        samples, gone_at, closer_then = [], None, None
        while time.monotonic() - closed_at < watch:
            e = _entry(topo)
            sock = _state(topo, closer, *hosts[closer][1:])
            t = time.monotonic() - closed_at
            samples.append([round(t, 2), sock, e.state if e else "gone"])
            if e is None and gone_at is None:
                gone_at, closer_then = t, sock
            time.sleep(0.1)
        out.update(
            samples=samples,
            closer_socket_when_gone=closer_then,
            entry_gone_after_s=None if gone_at is None else int(gone_at),
        )

    if reopen:
        old_age = _entry(topo).age_s
        time.sleep(REOPEN_AFTER)
        lab.step("the client connects again from the same port")
        listener.settimeout(5)
        again = topo.connect("client", net.server(family), SERVER_PORT, src_port=CLIENT_PORT)
        server2, _ = listener.accept()
        lab.wait_for(
            lambda: (_entry(topo) or conntrack.Entry(4, "", 0, (), (), False, False)).state == "ESTABLISHED",
            "the router's entry to be ESTABLISHED again",
        )
        found = [
            e
            for e in topo.conntrack("router")
            if e.original[1] == CLIENT_PORT and e.original[3] == SERVER_PORT
        ]
        out.update(
            reopen_connected=True,
            reopen_entry_state=found[0].state,
            reopen_entry_is_new=found[0].age_s < old_age + REOPEN_AFTER,
            reopen_entries=len(found),
            reopen_conntrack_table=conntrack.table_text(found),
        )
        again.close()
        close_after_eof(server2)
    lab.settle()
    out["host_pids"] = topo.processes()
    out["trace"] = lab.trace_between(
        (net.client(family=family), CLIENT_PORT), (net.server(family), SERVER_PORT)
    )
    return out


register(
    Experiment(
        name="conntrack-time-wait",
        summary="A router's conntrack keeps its own TIME_WAIT (120 s) beside the closer's socket.",
        params=(
            Param("closer", str, "client", "which side closes first", choices=("client", "server")),
            Param(
                "ct_time_wait",
                int,
                None,
                "the router's nf_conntrack_tcp_timeout_time_wait in "
                "seconds; None leaves the namespace's default",
                choices=(None, 2, 30, 240),
            ),
            Param(
                "watch",
                float,
                0.0,
                "seconds to keep reading the socket and the entry after the close",
                minimum=0,
                maximum=10,
            ),
            Param(
                "reopen",
                bool,
                False,
                "the server closes first, then the client connects again from the same port",
            ),
            Param("family", int, 4, "IP version of the connection (the hosts have both)", choices=(4, 6)),
        ),
        body=f"{__name__}:body",
        result=ConntrackTimeWaitResult,
        timeout=lambda p: 30.0 + p["watch"],
        topology=True,
        captures=True,
        variants=(
            {},
            {"closer": "server"},
            {"ct_time_wait": 2, "watch": 4.0},
            {"closer": "server", "reopen": True},
            {"family": 6},
        ),
    )
)
