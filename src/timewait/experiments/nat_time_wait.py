"""nat-time-wait: two clients behind one NAT address, and a server that holds TIME_WAIT.

``client1`` (A, 10.0.1.2) and ``client2`` (B, 10.0.2.2) reach ``server`` (10.0.100.2, port 80)
through ``router``, which rewrites every connection's source to 10.0.100.1 and the single
source port 40000 (nftables ``snat to 10.0.100.1:40000-40000``): at the server, A's and B's
connections have the same 4-tuple. A connects and exchanges a request; the server closes
first, so the server holds TIME_WAIT for 10.0.100.1:40000. The router forgets A's mapping
after 1 s (its ``nf_conntrack_tcp_timeout_time_wait``; the chapter on NAT port exhaustion
shows what it does while it remembers), then B connects and gets the same translated
4-tuple: its SYN meets the server's TIME_WAIT.

``tcp_timewait_state_process()`` (net/ipv4/tcp_minisocks.c) admits the SYN, and the server
answers with a SYN|ACK whose ISN is the old connection's last sequence number + 65537, when
the PAWS check does not reject it and either its sequence number is after the old
connection's next expected one (``rcv_nxt``) or it carries a timestamp newer than the last one
A sent (``ts_recent``). Otherwise the TIME_WAIT answers with an ACK of the old connection;
B resets it (that RST ends the TIME_WAIT while ``tcp_rfc1337`` is 0) and retransmits its SYN,
which the listener then answers.

Parameters set which of those holds, on every run:

- ``timestamps``: the clients' ``net.ipv4.tcp_timestamps``. 1 (Linux's default) adds a random
  offset, so whether B's clock reads newer than A's is chance; the run reports whether this
  kernel draws the offset per connection or per pair of addresses (``ts_offsets``). 2 sends the
  kernel's clock without offset (B's SYN, sent later, is newer); 0 sends none (the sequence
  number alone decides).
- ``a_ahead_s``: A's timestamp clock runs that many seconds ahead of B's from its request on
  (``TCP_REPAIR`` + ``TCP_TIMESTAMP`` on A's socket), as two hosts booted at different times
  were before Linux 4.10: B's SYN then carries an older timestamp than A's last segment.
- ``b_isn``: B's initial sequence number: the kernel's own (``kernel``), or set with
  ``TCP_REPAIR`` + ``TCP_QUEUE_SEQ`` 1,000,000 ahead of or behind the server's ``rcv_nxt``.

The run predicts the outcome from the captured timestamps and sequence numbers by that rule,
and reports what happened: the server's answer to B's first SYN, B's reset, the retransmitted
SYN and how long B's connect() took.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass
from typing import Optional

from ..model.seq import seq_diff
from ..topology import routed
from .base import Experiment, ExperimentResult, Param, register, shown
from .common import close_after_eof

SERVER_PORT = 80
NAT_PORT = 40000
ISN_STEP = 1_000_000  # b_isn ahead/behind: this far from the server's rcv_nxt
CT_TIME_WAIT = 1  # s: the router forgets A's mapping quickly
CONNECT_TIMEOUT = 10.0
# setsockopt numbers (linux/tcp.h)
TCP_REPAIR, TCP_REPAIR_QUEUE, TCP_QUEUE_SEQ, TCP_TIMESTAMP = 19, 20, 21, 24
TCP_REPAIR_ON, TCP_REPAIR_OFF, TCP_REPAIR_OFF_NO_WP, TCP_SEND_QUEUE = 1, 0, -1, 2
SERVER_COUNTERS = ("PAWSTimewait", "PAWSEstab", "TCPACKSkippedTimeWait", "TWKilled")


@dataclass(kw_only=True)
class NatTimeWaitResult(ExperimentResult):
    same_translated_tuple: bool = shown()  # A and B both left the router as 10.0.100.1:40000
    server_state_before_b: str = shown()  # the server's socket for that tuple when B connects
    b_syn_timestamp: str = shown()  # "newer"/"older"/"equal" than the TIME_WAIT's ts_recent, "none"
    b_syn_sequence: str = shown()  # "ahead"/"behind" of the TIME_WAIT's rcv_nxt
    predicted: str = shown()  # "admitted"/"refused", by tcp_timewait_state_process()'s rule
    outcome: str = shown()  # "admitted"/"refused": what the server's answer to B's first SYN was
    first_answer: str = shown()  # its flags
    answer_acks_old_connection: Optional[bool] = shown()  # refused: ACK = old rcv_nxt
    synack_isn_from_time_wait: Optional[bool] = shown()  # admitted: ISN = old snd_nxt + 65537
    b_reset: bool = shown()  # B answered the ACK with a RST (seen at the server)
    b_syns: int = shown()  # SYNs B sent
    b_connected: bool = shown()
    b_connect_took: str = shown()  # B's connect(), coarse: "under 0.5 s", "about 1 s", ...
    server_counters: dict = shown()  # server's counters that moved
    ts_offsets: Optional[str] = shown()  # timestamps=1: "per connection" or "per address pair"
    retransmit_after_ms: Optional[float]  # B's second SYN after its first (not shown)
    connect_ms: Optional[float]  # B's connect() (not shown)
    ts_recent: Optional[int]  # (not shown) the values the prediction used
    b_tsval: Optional[int]
    rcv_nxt: Optional[int]
    b_isn: Optional[int]
    host_pids: list  # the hosts' processes (gone after the run)


def predict(ts_recent: Optional[int], tsval: Optional[int], seq: int, rcv_nxt: int) -> str:
    """``tcp_timewait_state_process()``'s decision on a SYN meeting TIME_WAIT (Linux 6.x):
    PAWS rejects a timestamp older than ``ts_recent``; otherwise a sequence number after
    ``rcv_nxt``, or a timestamp newer than ``ts_recent``, admits it."""
    have_ts = ts_recent is not None and tsval is not None
    if have_ts and ts_recent != 0 and seq_diff(ts_recent, tsval) > 0:
        return "refused"  # tcp_paws_reject()
    if seq_diff(seq, rcv_nxt) > 0 or (have_ts and seq_diff(ts_recent, tsval) < 0):
        return "admitted"
    return "refused"


def duration_text(ms: float) -> str:
    """Coarse, so that a busy machine prints the same: the point is "not a whole RTO"."""
    if ms < 500:
        return "under 0.5 s"
    if ms < 1500:
        return "about 1 s"
    return f"about {round(ms / 1000)} s"


def _exchange(client, server) -> None:
    client.sendall(b"request\n")
    assert server.recv(100) == b"request\n"
    server.sendall(b"reply\n")
    assert client.recv(100) == b"reply\n"


def _server_state(topo) -> str:
    for s in topo.sockets("server", [SERVER_PORT]):
        if s.local[1] == SERVER_PORT and s.remote[1] == NAT_PORT:
            return s.state
    return "CLOSED"


def _server_counters(topo) -> dict:
    """The server's TcpExt counters (its own /proc/thread-self/net/netstat)."""
    with topo.on("server"):
        with open("/proc/thread-self/net/netstat") as fh:
            lines = fh.read().splitlines()
    for head, data in zip(lines[::2], lines[1::2], strict=False):
        if head.startswith("TcpExt:"):
            return dict(zip(head.split()[1:], map(int, data.split()[1:]), strict=True))
    return {}


def _ts_offset_scope(topo, host: str) -> str:
    """Two loopback connections on ``host``, from two ports to one: does each get a timestamp
    offset of its own? ``TCP_TIMESTAMP`` reads the kernel's clock plus the connection's offset,
    so two readings a moment apart differ by the difference of the offsets."""
    with topo.on(host):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]
        clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(2)]
    try:
        first, second = (
            struct.unpack("I", c.getsockopt(socket.IPPROTO_TCP, TCP_TIMESTAMP, 4))[0] for c in clients
        )
    finally:
        for sock in [*clients, listener]:
            sock.close()
    return "per connection" if abs(seq_diff(first, second)) > 1000 else "per address pair"


def _mapping_gone(topo) -> bool:
    return not any(e.reply[3] == NAT_PORT for e in topo.conntrack("router"))


def body(lab, timestamps: int, a_ahead_s: int, b_isn: str) -> dict:
    topo = lab.topology()
    net = routed(topo, clients=2)
    a_host, b_host = net.clients
    nat_addr = net.router_outside[0]
    topo.snat("router", net.outside_iface, nat_addr, (NAT_PORT, NAT_PORT))
    topo.sysctl("router", "net.netfilter.nf_conntrack_tcp_timeout_time_wait", CT_TIME_WAIT)
    for host in (a_host, b_host):
        topo.sysctl(host, "net.ipv4.tcp_timestamps", timestamps)
    outside = topo.capture("router", net.outside_iface)
    lab.capture = outside
    listener = topo.listener("server", net.server(), SERVER_PORT)
    listener.settimeout(5)

    offsets = _ts_offset_scope(topo, b_host) if timestamps == 1 else None

    lab.step("client A connects")
    a = topo.connect(a_host, net.server(), SERVER_PORT, timeout=5)
    server_a, peer_a = listener.accept()
    if a_ahead_s:
        lab.step(f"client A's timestamp clock jumps {a_ahead_s} s ahead")
        a.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_ON)
        now = struct.unpack("I", a.getsockopt(socket.IPPROTO_TCP, TCP_TIMESTAMP, 4))[0]
        a.setsockopt(
            socket.IPPROTO_TCP, TCP_TIMESTAMP, struct.pack("I", (now + a_ahead_s * 1000) & 0xFFFFFFFF)
        )
        a.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP)
    _exchange(a, server_a)
    lab.step("the server closes first")
    server_a.close()
    close_after_eof(a)
    lab.wait_for(lambda: _server_state(topo) == "TIME_WAIT", "the server's TIME_WAIT")
    fin = lab.wait_for(
        lambda: next((v for v in outside.tcp() if "FIN" in v.flags and v.src == (nat_addr, NAT_PORT)), None),
        "the capture to see A's FIN",
    )
    rcv_nxt = (fin.seq + 1) & 0xFFFFFFFF
    ts_recent = fin.tsval
    server_fin = next(v for v in outside.tcp() if "FIN" in v.flags and v.src == (net.server(), SERVER_PORT))
    old_snd_nxt = (server_fin.seq + 1) & 0xFFFFFFFF
    lab.wait_for(lambda: _mapping_gone(topo), "the router to forget A's mapping", timeout=5)
    time.sleep(0.05)  # B's clock moves on past A's last timestamp
    state_before = _server_state(topo)

    lab.step("client B connects")
    before = _server_counters(topo)
    b = topo.socket(b_host)
    if b_isn != "kernel":
        isn = (rcv_nxt + (ISN_STEP if b_isn == "ahead" else -ISN_STEP)) & 0xFFFFFFFF
        b.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_ON)
        b.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE)
        b.setsockopt(socket.IPPROTO_TCP, TCP_QUEUE_SEQ, struct.pack("I", isn))
        b.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_OFF)
    b.settimeout(CONNECT_TIMEOUT)
    t0 = time.monotonic()
    b.connect((net.server(), SERVER_PORT))
    connect_ms = (time.monotonic() - t0) * 1000
    server_b, peer_b = listener.accept()
    _exchange(b, server_b)
    lab.settle()
    after = _server_counters(topo)

    segs = [v for v in outside.tcp() if v.t > fin.t]
    b_syns = [v for v in segs if v.flags == "SYN" and v.src == (nat_addr, NAT_PORT)]
    first = b_syns[0]
    answer = next(v for v in segs if v.t > first.t and v.dst == (nat_addr, NAT_PORT))
    resets = [v for v in segs if "RST" in v.flags and v.src == (nat_addr, NAT_PORT)]
    synack = next(v for v in segs if v.flags == "SYN|ACK")
    if ts_recent is None or first.tsval is None:
        ts_rel = "none"
    else:
        d = seq_diff(first.tsval, ts_recent)
        ts_rel = "newer" if d > 0 else "older" if d < 0 else "equal"
    outcome = "admitted" if answer.flags == "SYN|ACK" else "refused"
    counters = {
        n: after.get(n, 0) - before.get(n, 0) for n in SERVER_COUNTERS if after.get(n, 0) != before.get(n, 0)
    }
    return {
        "same_translated_tuple": tuple(peer_a) == tuple(peer_b) == (nat_addr, NAT_PORT),
        "server_state_before_b": state_before,
        "b_syn_timestamp": ts_rel,
        "b_syn_sequence": "ahead" if seq_diff(first.seq, rcv_nxt) > 0 else "behind",
        "predicted": predict(ts_recent, first.tsval, first.seq, rcv_nxt),
        "outcome": outcome,
        "first_answer": answer.flags,
        "answer_acks_old_connection": (answer.ack == rcv_nxt and answer.seq == old_snd_nxt)
        if outcome == "refused"
        else None,
        "synack_isn_from_time_wait": (synack.seq == (old_snd_nxt + 65535 + 2) & 0xFFFFFFFF)
        if outcome == "admitted"
        else None,
        "b_reset": bool(resets),
        "b_syns": len(b_syns),
        "b_connected": True,
        "b_connect_took": duration_text(connect_ms),
        "server_counters": counters,
        "ts_offsets": offsets,
        "retransmit_after_ms": round((b_syns[1].t - first.t) * 1000, 1) if len(b_syns) > 1 else None,
        "connect_ms": round(connect_ms, 1),
        "ts_recent": ts_recent,
        "b_tsval": first.tsval,
        "rcv_nxt": rcv_nxt,
        "b_isn": first.seq,
        "host_pids": topo.processes(),
        "trace": lab.trace_between((nat_addr, NAT_PORT), (net.server(), SERVER_PORT)),
    }


register(
    Experiment(
        name="nat-time-wait",
        summary="Two clients behind one NAT port: the server's TIME_WAIT admits B's SYN or makes it retry.",
        params=(
            Param(
                "timestamps",
                int,
                1,
                "the clients' net.ipv4.tcp_timestamps (1: random offset "
                "per address pair, 2: no offset, 0: none)",
                choices=(1, 2, 0),
            ),
            Param(
                "a_ahead_s",
                int,
                0,
                "seconds client A's timestamp clock runs ahead of B's",
                minimum=0,
                maximum=86400,
            ),
            Param(
                "b_isn",
                str,
                "kernel",
                "client B's initial sequence number: the kernel's, or "
                "1,000,000 ahead of or behind the server's rcv_nxt",
                choices=("kernel", "ahead", "behind"),
            ),
        ),
        body=f"{__name__}:body",
        result=NatTimeWaitResult,
        timeout=lambda p: 40.0,
        topology=True,
        captures=True,
        variants=(
            {},
            {"timestamps": 2},
            {"timestamps": 2, "a_ahead_s": 3600},
            {"timestamps": 0, "b_isn": "ahead"},
            {"timestamps": 0, "b_isn": "behind"},
            {"timestamps": 2, "a_ahead_s": 3600, "b_isn": "ahead"},
            {"timestamps": 2, "b_isn": "behind"},
        ),
    )
)
