"""nat-port-exhaustion: clients behind SNAT with a small port range, to one server port.

``client`` reaches ``server`` (10.0.100.2, port 80) through ``router``, which rewrites every
connection's source to its own address (``addresses`` of them: 10.0.100.1, 10.0.100.3...)
and a source port from ``ports`` ports (40000...). Each mapping is one conntrack entry. The
rule offers ``addresses`` x ``ports`` translated source tuples, but for one client and one
server Linux uses one address of a range: ``find_best_ips_proto()`` (net/netfilter/
nf_nat_core.c) picks it by a hash of the source and destination addresses.

``connections`` connections are opened one after another, each with one request:

- ``hold="open"``: every connection stays open. Once the budget is used, the router finds
  no free tuple for the next SYN, drops it (conntrack's ``insert_failed`` and ``drop``
  counters move), and the client sees connect() time out (ETIMEDOUT after
  ``tcp_syn_retries`` = 1 retransmission, about 3 s), not EADDRNOTAVAIL: its own ports are
  plentiful.
- ``hold="closed"``: the client closes each connection after its reply; the router's
  entries wait in conntrack's TIME_WAIT (120 s). A new SYN that finds every port taken may
  still evict such an entry: ``nf_nat_used_tuple_harder()`` (net/netfilter/nf_nat_core.c)
  kills a colliding entry in TIME_WAIT when the new SYN's sequence number has advanced past
  the old connection's. The run records, for each connection, whether that rule predicts
  its outcome from the sequence numbers it captured on the client's link.
- ``keepalive=True``: one connection carries all the requests (HTTP keep-alive): one
  mapping, whatever the number of requests.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

from .. import conntrack
from ..model.seq import seq_gt
from ..topology import routed
from .base import Experiment, ExperimentResult, Param, register, shown
from .common import errno_name

SERVER_PORT = 80
FIRST_PORT = 40000
SYN_RETRIES = 1  # connect() gives up after about 1 + 2 = 3 s
CONNECT_TIMEOUT = 10.0  # the kernel's ETIMEDOUT comes first


@dataclass(kw_only=True)
class NatPortExhaustionResult(ExperimentResult):
    budget: int = shown()  # addresses x ports: the translated tuples the rule offers
    connected: int = shown()
    failed: int = shown()
    errors: list = shown()  # errno name of each failed connect()
    gave_up_after_s: Optional[int] = shown()  # the first failed connect(), whole seconds
    mappings: int = shown()  # distinct translated (address, port) used
    addresses_used: int = shown()  # distinct translated addresses among them
    entries_by_state: dict = shown()  # the router's table at the end
    counters: dict = shown()  # conntrack statistics that moved
    failed_syns: int = shown()  # SYNs the failed connections sent (seen on the client's link)
    syns_dropped: int = shown()  # SYNs seen on the client's link but never on the server's
    failed_syn_times_s: list = shown()  # each one's SYNs, whole s after its first
    evictions: int = shown()  # closed: connections that took a port whose entry was in TIME_WAIT
    rule_predicted_all: Optional[bool] = shown()  # closed: the eviction rule matched each outcome
    outcomes: list  # per connection: "ok" or errno (not shown)
    host_pids: list  # the hosts' processes (gone after the run)


def body(lab, ports: int, addresses: int, connections: int, hold: str, keepalive: bool) -> dict:
    if keepalive and hold != "closed":
        raise ValueError(
            f"keepalive: one connection carries every request, so hold must be 'closed', got hold={hold!r}"
        )
    topo = lab.topology()
    net = routed(topo)
    nat_addrs = [net.router_outside[0]] + [f"10.0.100.{i}" for i in range(3, 2 + addresses)]
    for extra in nat_addrs[1:]:
        topo.run("router", ["ip", "addr", "add", f"{extra}/24", "dev", net.outside_iface])
    to = nat_addrs[0] if addresses == 1 else f"{nat_addrs[0]}-{nat_addrs[-1]}"
    topo.snat("router", net.outside_iface, to, (FIRST_PORT, FIRST_PORT + ports - 1))
    topo.sysctl("client", "net.ipv4.tcp_syn_retries", SYN_RETRIES)
    inside = topo.capture("router", "eth0")
    outside = topo.capture("router", net.outside_iface)
    listener = topo.listener("server", net.server(), SERVER_PORT, backlog=128)
    listener.settimeout(5)
    before = topo.conntrack_stats("router")

    outcomes, errors, gave_up, held, used = [], [], None, [], []
    evictions, predicted = 0, []
    ended = {}  # translated (addr, port) -> the client's end of sequence space on it
    client_ports = []
    keep = None
    for i in range(connections):
        lab.step(f"connection {i + 1} of {connections}")
        if keepalive and keep is not None:
            client, server = keep
        else:
            t0 = time.monotonic()
            try:
                client = topo.connect("client", net.server(), SERVER_PORT, timeout=CONNECT_TIMEOUT)
            except OSError as exc:
                name = errno_name(exc)
                outcomes.append(name)
                errors.append(name)
                if gave_up is None:
                    gave_up = int(time.monotonic() - t0)
                predicted.append(_predict(lab, inside, ended, None))
                continue
            server, peer = listener.accept()
            used.append(peer)
            client_ports.append(client.getsockname()[1])
            if hold == "closed":
                was_tw = peer in ended
                predicted.append(_predict(lab, inside, ended, client.getsockname()[1], peer))
                evictions += was_tw
        client.sendall(b"GET / HTTP/1.1\r\n\r\n")
        assert server.recv(100)
        server.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        assert client.recv(100)
        outcomes.append("ok")
        if keepalive:
            keep = (client, server)
        elif hold == "open":
            held.append((client, server))
        else:
            client.close()
            server.settimeout(5)
            assert server.recv(1) == b""
            server.close()
            lab.wait_for(lambda peer=peer: _tw_entry(topo, peer), "the router's entry to reach TIME_WAIT")
            lab.wait_for(
                lambda: _end_seq(inside, client_ports[-1]) is not None, "the capture to see the client's FIN"
            )
            ended[peer] = _end_seq(inside, client_ports[-1])
    if keep:
        keep[0].close()
        keep[1].close()
    time.sleep(0.2)  # the capture threads read the last segments
    table = topo.conntrack("router")
    by_state = {}
    for e in table:
        by_state[e.state] = by_state.get(e.state, 0) + 1
    inside_syns = [v for v in inside.tcp() if v.flags == "SYN"]
    outside_syns = [v for v in outside.tcp() if v.flags == "SYN"]
    by_port = {}  # the SYNs of each failed connection, by its client port
    for v in inside_syns:
        if v.src[1] not in client_ports:
            by_port.setdefault(v.src[1], []).append(v.t)
    syn_times = [[round(t - ts[0]) for t in ts] for ts in by_port.values()]
    return {
        "budget": ports * addresses,
        "connected": outcomes.count("ok") if not keepalive else len(used),
        "failed": len(errors),
        "errors": errors,
        "gave_up_after_s": gave_up,
        "mappings": len(set(used)),
        "addresses_used": len({addr for addr, _ in used}),
        "entries_by_state": by_state,
        "counters": conntrack.stats_delta(before, topo.conntrack_stats("router")),
        "syns_dropped": len(inside_syns) - len(outside_syns),
        "failed_syns": sum(len(ts) for ts in syn_times),
        "failed_syn_times_s": syn_times,
        "evictions": evictions,
        "rule_predicted_all": all(predicted) if hold == "closed" and not keepalive else None,
        "outcomes": outcomes,
        "host_pids": topo.processes(),
    }


def _tw_entry(topo, peer) -> bool:
    return any(
        e.state == "TIME_WAIT" and (e.reply[2], e.reply[3]) == tuple(peer) for e in topo.conntrack("router")
    )


def _end_seq(capture, client_port: int) -> Optional[int]:
    """The client's last sequence number + 1 on its connection from ``client_port``: its FIN's
    seq + 1 (what conntrack's td_end for the original direction ends at)."""
    for v in capture.tcp():
        if v.src[1] == client_port and "FIN" in v.flags:
            return (v.seq + 1) & 0xFFFFFFFF
    return None


def _predict(lab, capture, ended: dict, client_port: Optional[int], peer=None) -> bool:
    """Did the eviction rule predict this connection's outcome? A connection that took a
    port held by a TIME_WAIT entry must have a SYN beyond that entry's end; a connection
    that failed must have found no such port (every port held, none advanced)."""
    if client_port is None:  # failed: no held port may have been evictable by its SYNs
        time.sleep(0.2)  # the capture thread reads the last SYN
        isn = [v for v in capture.tcp() if v.flags == "SYN"][-1].seq
        return not any(seq_gt(isn, end) for end in ended.values())
    syn = lab.wait_for(
        lambda: next((v for v in capture.tcp() if v.flags == "SYN" and v.src[1] == client_port), None),
        "the capture to see the SYN",
    )
    if tuple(peer) not in ended:
        return True  # a free port: nothing to evict
    return seq_gt(syn.seq, ended[tuple(peer)])


register(
    Experiment(
        name="nat-port-exhaustion",
        summary="Connections through SNAT with a few ports: a dropped SYN and a connect() timeout.",
        params=(
            Param("ports", int, 4, "source ports in the router's SNAT range", minimum=1, maximum=16),
            Param("addresses", int, 1, "SNAT addresses of the router", minimum=1, maximum=4),
            Param("connections", int, 6, "connections opened one after another", minimum=1, maximum=32),
            Param(
                "hold",
                str,
                "open",
                "keep each connection open, or close it after its reply",
                choices=("open", "closed"),
            ),
            Param("keepalive", bool, False, "one connection carries every request (needs hold='closed')"),
        ),
        body=f"{__name__}:body",
        result=NatPortExhaustionResult,
        timeout=lambda p: 20.0 + 4.0 * p["connections"],
        topology=True,
        variants=(
            {},
            {"addresses": 2},
            {"ports": 8, "connections": 10},
            {"hold": "closed", "connections": 12},
            {"hold": "closed", "keepalive": True, "connections": 12},
        ),
    )
)
