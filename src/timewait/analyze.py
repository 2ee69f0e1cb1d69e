"""``timewait analyze CAPTURE``: how every TCP connection in a capture ended, and who kept TIME_WAIT.

For each *incarnation* of a connection (a 4-tuple from one SYN to its end; the same 4-tuple
opened again is a new incarnation) the report says who opened it, who closed first and so
holds TIME_WAIT, and how it closed:

- ``four-segment``: FIN, ACK, FIN, ACK;
- ``merged``: FIN, FIN|ACK that acknowledges it, ACK (three segments);
- ``simultaneous``: each side sent its FIN before it had the other's (both keep TIME_WAIT);
- ``reset``: a RST ended it before both FINs; ``refused``: a SYN answered by a RST;
- ``unfinished``: the capture ends before the close does.

and what went wrong on the way: FIN retransmissions, a final ACK that was evidently lost (the
peer retransmitted its FIN after it), a RST answering a FIN (the side that closed first kept
no TIME_WAIT), a reuse of the 4-tuple less than 60 s after the previous incarnation ended
(with the relation of the new ISN and timestamp to the old ones), and a SYN answered from
TIME_WAIT by an ACK of the old connection, which the opener resets.

The file is read once, as a stream (:mod:`timewait.pcapread`); an incarnation is kept in
memory until 60 s of capture time after its last segment, then folded into the report.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Optional

from .cli_options import INPUT_FILE, OUTPUT_FILE, add_valid, checked, input_file, output_file
from .pcapread import ACK, FIN, FLAG_NAMES, RST, SYN, Packet, read_tcp

MASK = 0xFFFFFFFF
TIME_WAIT_LEN = 60.0  # s; TCP_TIMEWAIT_LEN in include/net/tcp.h
DEFAULT_EPHEMERAL_PORTS = 60999 - 32768 + 1  # Linux's default ip_local_port_range
EVICT_EVERY = 20000  # packets between sweeps of incarnations idle for TIME_WAIT_LEN
CLOSE_KINDS = ("four-segment", "merged", "simultaneous", "reset", "refused", "unfinished")


def _after(a: int, b: int) -> bool:
    """Sequence number ``a`` is after ``b`` (RFC 1982 serial arithmetic, 32 bits)."""
    return 0 < ((a - b) & MASK) < 0x80000000


def _fmt(endpoint: tuple) -> str:
    address, port = endpoint
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


class _Side:
    """What one endpoint of an incarnation sent."""

    __slots__ = (
        "isn",
        "syn_seq",
        "next_seq",
        "fin_seq",
        "fin_count",
        "last_tsval",
        "first_tsval",
        "retransmissions",
        "fin_t",
    )

    def __init__(self):
        self.isn = None  # wire seq the side's sequence space starts from
        self.syn_seq = None
        self.next_seq = None  # wire seq just after the highest byte (or SYN/FIN) sent
        self.fin_seq = None
        self.fin_count = 0
        self.fin_t = None
        self.first_tsval = None
        self.last_tsval = None
        self.retransmissions = 0


@dataclass(slots=True)
class Reuse:
    """The 4-tuple was opened again ``gap_s`` after the previous incarnation's last segment."""

    gap_s: float
    previous: int  # index of the previous incarnation
    isn_relation: str  # "above" or "below" the opener's last sequence number in the old one
    timestamp_relation: str  # "newer", "older" or "none" (no timestamps on one of them)
    old_duplicate: str  # "rejected by PAWS", "rejected by sequence", or "possible"


@dataclass(slots=True)
class Incarnation:
    index: int
    client: str  # "address:port"; the side that sent the SYN (else the higher port)
    server: str
    opener: Optional[str]  # "client", or None when the capture missed the SYN
    first_t: float
    last_t: float
    packets: int
    close_kind: str
    active_closer: Optional[str]  # "client", "server", "both" or None
    time_wait_holder: Optional[str]  # who keeps TIME_WAIT: "client", "server", "both" or None
    fins: int
    resets: int
    retransmissions: int
    fin_retransmissions: int
    lost_final_ack: bool
    rst_answering_fin: bool
    # A RST reached the side that closed first after both FINs were acknowledged, so in
    # TIME_WAIT: Linux ends TIME_WAIT at once on it unless net.ipv4.tcp_rfc1337 is 1 there
    # (RFC 1337's TIME_WAIT assassination), which the capture cannot show.
    rst_to_time_wait: bool
    # The SYN met the previous incarnation still held by the peer ("TIME_WAIT", "LAST_ACK",
    # ...): it answered with an ACK of the old connection, which the opener reset. Else None.
    old_ack_then_rst: Optional[str]
    reuse: Optional[Reuse] = None

    @property
    def anomalies(self) -> list:
        found = []
        if self.fin_retransmissions:
            found.append(f"{self.fin_retransmissions} FIN retransmission(s)")
        if self.lost_final_ack:
            found.append("final ACK lost (the peer retransmitted its FIN)")
        if self.rst_answering_fin:
            found.append("RST answering a FIN (the side that closed first kept no TIME_WAIT)")
        if self.rst_to_time_wait:
            found.append(
                "RST sent into TIME_WAIT after the close (Linux ends that TIME_WAIT at once "
                "unless net.ipv4.tcp_rfc1337=1 on that side: TIME_WAIT assassination, RFC 1337)"
            )
        if self.old_ack_then_rst:
            found.append(
                f"SYN answered from {self.old_ack_then_rst} by an ACK of the old connection, then RST"
            )
        if self.reuse is not None:
            r = self.reuse
            found.append(
                f"4-tuple reused {r.gap_s:.3g} s after #{r.previous}: ISN {r.isn_relation} "
                f"the old sequence numbers, timestamp {r.timestamp_relation}; an old "
                f"duplicate: {r.old_duplicate}"
            )
        return found


class _Live:
    """An incarnation being read."""

    __slots__ = (
        "index",
        "client",
        "server",
        "opener",
        "first_t",
        "last_t",
        "packets",
        "sides",
        "first_fin",
        "fin_acked_alone",
        "second_fin_acks_first",
        "final_ack_t",
        "lost_final_ack",
        "rst_answering_fin",
        "rst_to_time_wait",
        "rst_from",
        "resets",
        "fins",
        "fin_retransmissions",
        "synack_seen",
        "tw_ack",
        "tw_ack_then_rst",
        "reuse",
        "last_from",
        "last_flags",
        "peer_old_state",
    )

    def __init__(self, index, client, server, t, opener):
        self.index, self.client, self.server, self.opener = index, client, server, opener
        self.first_t = self.last_t = t
        self.packets = 0
        self.sides = {client: _Side(), server: _Side()}
        self.first_fin = None  # endpoint whose FIN came first
        self.fin_acked_alone = False  # the other side acknowledged that FIN before sending its own
        self.second_fin_acks_first = None
        self.final_ack_t = None
        self.lost_final_ack = self.rst_answering_fin = self.rst_to_time_wait = False
        self.rst_from = None
        self.resets = self.fins = self.fin_retransmissions = 0
        self.synack_seen = False
        self.tw_ack = self.tw_ack_then_rst = False
        self.reuse = None
        self.peer_old_state = "an older connection"
        self.last_from = None
        self.last_flags = 0

    def closed(self) -> bool:
        if self.rst_from is not None:
            return True
        return all(s.fin_seq is not None for s in self.sides.values())

    def add(self, p: Packet, src: tuple, dst: tuple) -> None:
        self.packets += 1
        self.last_t = p.t
        side, other = self.sides[src], self.sides[dst]
        flags = p.flags
        if flags & SYN and flags & ACK:
            self.synack_seen = True
        if (
            flags & ACK
            and not flags & SYN
            and side.isn is None
            and other.syn_seq is not None
            and not self.synack_seen
        ):
            # The SYN met a TIME_WAIT socket: it answers with an ACK of the old connection.
            self.tw_ack = True
            self._after_segment(src, flags)
            return
        if flags & RST:
            self.resets += 1
            if self.tw_ack and not self.synack_seen and src == self.client:
                self.tw_ack_then_rst = True
            else:
                if self.last_flags & FIN and self.last_from == dst:
                    self.rst_answering_fin = True
                elif dst == self.first_fin and self.final_ack_t is not None:
                    self.rst_to_time_wait = True
                if self.rst_from is None:
                    self.rst_from = src
            self._after_segment(src, flags)
            return
        if side.isn is None:
            side.isn = p.seq if flags & SYN else (p.seq - 1) & MASK
            side.next_seq = side.isn if flags & SYN else p.seq
        if p.tsval is not None:
            if side.first_tsval is None:
                side.first_tsval = p.tsval
            side.last_tsval = p.tsval
        end = (p.seq + p.length + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)) & MASK
        occupies = p.length or flags & (SYN | FIN)
        if flags & SYN:
            side.syn_seq = p.seq
        if occupies:
            keepalive = p.length == 1 and not flags & (SYN | FIN) and ((p.seq + 1) & MASK) == side.next_seq
            if not keepalive and not _after(end, side.next_seq):
                side.retransmissions += 1
            if _after(end, side.next_seq):
                side.next_seq = end
        if flags & FIN:
            self.fins += 1
            fin_seq = (p.seq + p.length) & MASK
            if side.fin_seq is None:
                side.fin_seq, side.fin_t = fin_seq, p.t
                if self.first_fin is None:
                    self.first_fin = src
                elif self.second_fin_acks_first is None:
                    first = self.sides[dst]
                    self.second_fin_acks_first = bool(
                        flags & ACK and not _after((first.fin_seq + 1) & MASK, p.ack)
                    )
            elif fin_seq == side.fin_seq:
                self.fin_retransmissions += 1
                if src != self.first_fin and self.final_ack_t is not None:
                    self.lost_final_ack = True
        if flags & ACK and other.fin_seq is not None and not _after((other.fin_seq + 1) & MASK, p.ack):
            if not flags & FIN and side.fin_seq is None and self.first_fin == dst:
                self.fin_acked_alone = True
            if (
                self.first_fin == src
                and side.fin_seq is not None
                and not flags & FIN
                and self.final_ack_t is None
            ):
                self.final_ack_t = p.t
        self._after_segment(src, flags)

    def _after_segment(self, src, flags):
        self.last_from, self.last_flags = src, flags

    def finish(self) -> Incarnation:
        name = {self.client: "client", self.server: "server"}
        both_fins = all(s.fin_seq is not None for s in self.sides.values())
        first_fin = name.get(self.first_fin)
        if self.rst_from is not None and not both_fins:
            kind = "refused" if not self.synack_seen and self.opener else "reset"
            closer = first_fin or name[self.rst_from]
            holder = None
        elif both_fins:
            if self.second_fin_acks_first:
                kind = "four-segment" if self.fin_acked_alone else "merged"
                closer = holder = first_fin
            else:
                kind, closer, holder = "simultaneous", "both", "both"
            if self.rst_answering_fin:
                holder = None if holder != "both" else holder
        else:
            kind, closer, holder = "unfinished", first_fin, None
        return Incarnation(
            index=self.index,
            client=_fmt(self.client),
            server=_fmt(self.server),
            opener=self.opener,
            first_t=self.first_t,
            last_t=self.last_t,
            packets=self.packets,
            close_kind=kind,
            active_closer=closer,
            time_wait_holder=holder,
            fins=self.fins,
            resets=self.resets,
            retransmissions=sum(s.retransmissions for s in self.sides.values()),
            fin_retransmissions=self.fin_retransmissions,
            lost_final_ack=self.lost_final_ack,
            rst_answering_fin=self.rst_answering_fin,
            rst_to_time_wait=self.rst_to_time_wait,
            old_ack_then_rst=self.peer_old_state if self.tw_ack_then_rst else None,
            reuse=self.reuse,
        )


@dataclass
class ServerSummary:
    """Every incarnation towards one server address:port."""

    server: str
    connections: int = 0
    opened_per_s: float = 0.0
    closed_first_by: dict = field(default_factory=dict)  # "client"/"server"/"both"/"reset"/...
    time_wait_holders: dict = field(default_factory=dict)
    clients: int = 0  # distinct client addresses
    busiest_client: str = ""
    busiest_client_per_s: float = 0.0
    port_budget_used: float = 0.0  # busiest client's rate / (ports / 60 s), when clients close first
    reuses_within_60s: int = 0
    anomalies: int = 0


@dataclass
class Analysis:
    path: str
    packets: int  # TCP segments read
    first_t: Optional[float]
    last_t: Optional[float]
    incarnations: list  # Incarnation, in the order they started (up to ``keep``)
    incarnation_count: int
    close_kinds: dict
    servers: list  # ServerSummary, most connections first
    totals: dict  # fins, resets, retransmissions, fin_retransmissions, ...

    @property
    def duration_s(self) -> float:
        return (self.last_t - self.first_t) if self.packets else 0.0

    def to_json(self) -> dict:
        return {
            "capture": self.path,
            "packets": self.packets,
            "duration_s": self.duration_s,
            "incarnation_count": self.incarnation_count,
            "close_kinds": self.close_kinds,
            "totals": self.totals,
            "servers": [asdict(s) for s in self.servers],
            "incarnations": [{**asdict(i), "anomalies": i.anomalies} for i in self.incarnations],
            "assumed_ephemeral_ports": DEFAULT_EPHEMERAL_PORTS,
        }

    def text(self, top: int = 20) -> str:
        out = [
            f"{self.path}: {self.packets:,} TCP segments over {_seconds(self.duration_s)}, "
            f"{self.incarnation_count:,} connection incarnation(s)"
        ]
        kinds = ", ".join(f"{n:,} {k}" for k, n in self.close_kinds.items() if n)
        out.append(f"closes: {kinds or 'none'}")
        t = self.totals
        out.append(
            f"FINs {t['fins']:,}, RSTs {t['resets']:,}, retransmissions "
            f"{t['retransmissions']:,} (of FINs {t['fin_retransmissions']:,}), final ACKs "
            f"lost {t['lost_final_acks']:,}, RSTs answering a FIN {t['rst_answering_fin']:,}, "
            f"RSTs into TIME_WAIT {t['rst_to_time_wait']:,}, "
            f"4-tuples reused within 60 s {t['reuses_within_60s']:,}, SYNs answered by an "
            f"ACK of the old connection {t['old_ack_then_rst']:,}"
        )
        out.append("")
        out.append("Per server (address:port):")
        for s in self.servers[:top]:
            closers = ", ".join(f"{k} {v:,}" for k, v in s.closed_first_by.items())
            out.append(
                f"  {s.server}: {s.connections:,} connections, {_rate(s.opened_per_s)} new/s; "
                f"closed first by: {closers}"
            )
            if s.closed_first_by.get("server", 0) >= s.connections / 2:
                out.append(
                    "    the server closes first: TIME_WAIT sits on its port, which costs no ephemeral ports"
                )
            elif s.port_budget_used:
                out.append(
                    f"    clients close first: busiest client {s.busiest_client} opens "
                    f"{_rate(s.busiest_client_per_s)}/s, {s.port_budget_used:.0%} of the "
                    f"{DEFAULT_EPHEMERAL_PORTS:,} ports / 60 s a Linux client has by default"
                )
        out.append("")
        shown = [i for i in self.incarnations if i.anomalies or i.close_kind != "four-segment"]
        out.append(
            f"Connections ({len(self.incarnations):,} kept; showing {min(top, len(shown))} "
            "with an anomaly or an unusual close):"
            if shown
            else "Connections: every one closed with four segments and no anomaly."
        )
        for i in shown[:top]:
            who = i.active_closer or "nobody"
            out.append(
                f"  #{i.index} {i.client} -> {i.server}: {i.close_kind}, closed first by "
                f"{who}, TIME_WAIT kept by {i.time_wait_holder or 'nobody'}"
            )
            for a in i.anomalies:
                out.append(f"      {a}")
        return "\n".join(out)


def _seconds(s: float) -> str:
    return f"{s:.3g} s" if s < 100 else f"{s:,.0f} s"


def _rate(r: float) -> str:
    return f"{r:.3g}" if r < 1000 else f"{r:,.0f}"


def _old_duplicate(isn_above: bool, ts: str) -> str:
    if ts == "newer":
        return "rejected by PAWS"
    if isn_above:
        return "rejected by sequence"
    return "possible"


class Analyzer:
    """Feed packets with :meth:`add`, then :meth:`result`."""

    def __init__(self, path: str = "", keep: Optional[int] = 10_000):
        self.path, self.keep = path, keep
        self.live = {}  # canonical 4-tuple -> _Live
        self.done = []
        self.count = 0
        self.packets = 0
        self.first_t = self.last_t = None
        self.kinds = Counter()
        self.totals = Counter()
        self.servers = {}  # server -> [connections, closed-first Counter, holders Counter,
        #                    client Counter, reuses, anomalies, first_t, last_t]

    def add(self, p: Packet) -> None:
        self.packets += 1
        if self.first_t is None:
            self.first_t = p.t
        self.last_t = p.t
        src, dst = (p.src, p.sport), (p.dst, p.dport)
        key = (src, dst) if src < dst else (dst, src)
        inc = self.live.get(key)
        if p.flags & SYN and not p.flags & ACK:
            syn_seq = None if inc is None else inc.sides[src].syn_seq
            # A SYN with a new ISN, or a first SYN after a close or after segments of a
            # connection whose opening the capture missed, starts a new incarnation.
            if (
                inc is None
                or syn_seq not in (None, p.seq)
                or (syn_seq is None and (inc.opener is None or inc.closed()))
            ):
                previous = inc
                inc = self._open(key, src, dst, p.t, "client")
                if previous is not None:
                    self._reuse(inc, previous, p, src, dst)
                    self._fold(previous)
        elif inc is None:
            if p.flags & SYN:  # SYN|ACK first: its sender is the server
                client, server = dst, src
            else:
                client, server = (src, dst) if p.sport >= p.dport else (dst, src)
            inc = self._open(key, client, server, p.t, None)
        inc.add(p, src, dst)
        if self.packets % EVICT_EVERY == 0:
            self._evict(p.t)

    def _open(self, key, client, server, t, opener) -> _Live:
        inc = _Live(self.count, client, server, t, opener)
        self.count += 1
        self.live[key] = inc
        return inc

    def _reuse(self, inc: _Live, previous: _Live, p: Packet, src: tuple, dst: tuple) -> None:
        gap = p.t - previous.last_t
        old = previous.sides[src]
        peer = previous.sides[dst]
        if peer.fin_seq is not None:
            inc.peer_old_state = "TIME_WAIT" if previous.first_fin == dst else "LAST_ACK"
        if gap >= TIME_WAIT_LEN or old.next_seq is None:
            return
        above = _after(p.seq, old.next_seq)
        if p.tsval is None or old.last_tsval is None:
            ts = "none"
        else:
            ts = "newer" if _after(p.tsval, old.last_tsval) else "older"
        inc.reuse = Reuse(
            round(gap, 6), previous.index, "above" if above else "below", ts, _old_duplicate(above, ts)
        )

    def _evict(self, now: float) -> None:
        stale = [k for k, inc in self.live.items() if now - inc.last_t > TIME_WAIT_LEN]
        for k in stale:
            self._fold(self.live.pop(k))

    def _fold(self, live: _Live) -> None:
        inc = live.finish()
        if self.keep is None or len(self.done) < self.keep:
            self.done.append(inc)
        self.kinds[inc.close_kind] += 1
        t = self.totals
        t["fins"] += inc.fins
        t["resets"] += inc.resets
        t["retransmissions"] += inc.retransmissions
        t["fin_retransmissions"] += inc.fin_retransmissions
        t["lost_final_acks"] += inc.lost_final_ack
        t["rst_answering_fin"] += inc.rst_answering_fin
        t["rst_to_time_wait"] += inc.rst_to_time_wait
        t["reuses_within_60s"] += inc.reuse is not None
        t["old_ack_then_rst"] += inc.old_ack_then_rst is not None
        s = self.servers.setdefault(
            inc.server, [0, Counter(), Counter(), Counter(), 0, 0, inc.first_t, inc.first_t]
        )
        s[0] += 1
        first = (
            inc.active_closer if inc.close_kind not in ("reset", "refused", "unfinished") else inc.close_kind
        )
        s[1][first] += 1
        s[2][inc.time_wait_holder or "nobody"] += 1
        s[3][inc.client.rsplit(":", 1)[0]] += 1
        s[4] += inc.reuse is not None
        s[5] += bool(inc.anomalies)
        s[6], s[7] = min(s[6], inc.first_t), max(s[7], inc.first_t)

    def result(self) -> Analysis:
        for live in sorted(self.live.values(), key=lambda i: i.index):
            self._fold(live)
        self.live = {}
        span = max((self.last_t or 0) - (self.first_t or 0), 1.0)
        servers = []
        for name, (n, closers, holders, clients, reuses, anomalies, _t0, _t1) in self.servers.items():
            busiest, busiest_n = clients.most_common(1)[0]
            per_s = busiest_n / span
            clients_close = closers.get("client", 0) > n / 2
            servers.append(
                ServerSummary(
                    server=name,
                    connections=n,
                    opened_per_s=n / span,
                    closed_first_by=dict(closers.most_common()),
                    time_wait_holders=dict(holders),
                    clients=len(clients),
                    busiest_client=busiest,
                    busiest_client_per_s=per_s,
                    port_budget_used=(
                        per_s * TIME_WAIT_LEN / DEFAULT_EPHEMERAL_PORTS if clients_close else 0.0
                    ),
                    reuses_within_60s=reuses,
                    anomalies=anomalies,
                )
            )
        servers.sort(key=lambda s: (-s.connections, s.server))
        self.done.sort(key=lambda i: i.index)
        totals = {
            k: self.totals.get(k, 0)
            for k in (
                "fins",
                "resets",
                "retransmissions",
                "fin_retransmissions",
                "lost_final_acks",
                "rst_answering_fin",
                "rst_to_time_wait",
                "reuses_within_60s",
                "old_ack_then_rst",
            )
        }
        return Analysis(
            self.path,
            self.packets,
            self.first_t,
            self.last_t,
            self.done,
            self.count,
            {k: self.kinds.get(k, 0) for k in CLOSE_KINDS},
            servers,
            totals,
        )


def analyze_packets(packets: Iterable[Packet], path: str = "", keep: Optional[int] = 10_000) -> Analysis:
    a = Analyzer(path, keep)
    for p in packets:
        a.add(p)
    return a.result()


def analyze(path: str, keep: Optional[int] = 10_000) -> Analysis:
    """Read the capture at ``path`` once and report every connection incarnation in it; the
    first ``keep`` incarnations are listed (all of them are counted)."""
    return analyze_packets(read_tcp(path), path, keep)


def trace_packets(trace) -> Iterable[Packet]:
    """The segments of a recorded :class:`timewait.trace.Trace` as the packets of a loopback
    capture (127.0.0.1 on both sides, the recorded ports and wire sequence numbers)."""
    for s in trace:
        bits = sum(bit for bit, name in FLAG_NAMES if name in s.flag_set)
        yield Packet(
            s.t,
            "127.0.0.1",
            s.sport,
            "127.0.0.1",
            s.dport,
            s.seq_abs,
            s.ack_abs or 0,
            bits,
            s.length,
            0,
            s.tsval,
            s.tsecr,
        )


def analyze_result(result, path: str) -> Analysis:
    """Analyse an experiment's capture. A live run's frames are written to the pcap ``path``
    and read back like any capture; a recorded run keeps no frames, so its recorded segments
    are analysed instead (the same segments, without the file)."""
    if result.frames:
        result.write_pcap(path)
        return analyze(path)
    return analyze_packets(trace_packets(result.trace), f"recorded run of {result.experiment}")


def incarnation_trace(path: str, inc: Incarnation):
    """The segments of one incarnation as a :class:`timewait.trace.Trace` (client and server
    named as in the report), for :func:`timewait.plots.sequence_diagram`."""
    from .capture import to_trace

    def endpoint(text):
        address, port = text.rsplit(":", 1)
        return address.strip("[]"), int(port)

    client, server = endpoint(inc.client), endpoint(inc.server)
    views = [
        _View(p)
        for p in read_tcp(path)
        if inc.first_t <= p.t <= inc.last_t and {(p.src, p.sport), (p.dst, p.dport)} == {client, server}
    ]
    return to_trace(views, client, server)


class _FileLink:
    link = ""  # a capture file is one link, not one of a topology's


_FILE_LINK = _FileLink()


@dataclass(frozen=True)
class _View:
    """A :class:`Packet` in the shape :func:`timewait.capture.to_trace` reads."""

    packet: Packet

    @property
    def t(self):
        return self.packet.t

    @property
    def src(self):
        return (self.packet.src, self.packet.sport)

    @property
    def dst(self):
        return (self.packet.dst, self.packet.dport)

    @property
    def flags(self):
        return self.packet.flag_text()

    @property
    def frame(self):
        """What :func:`timewait.capture.to_trace` asks of a frame: the link it was on."""
        return _FILE_LINK

    def __getattr__(self, name):
        return getattr(self.packet, name)


# ---------------------------------------------------------------- command line


def add_parser(sub) -> None:
    p = sub.add_parser(
        "analyze", help="how every TCP connection in a pcap/pcapng capture ended, and who kept TIME_WAIT"
    )
    add_valid(
        p.add_argument(
            "capture", type=input_file, help="a pcap or pcapng file (tcpdump -w, Wireshark, timewait --pcap)"
        ),
        INPUT_FILE,
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    # Checked while the command line is parsed (cli_options): one line naming the range.
    top, number = "between 1 and 100000", "a connection number between 0 and 1000000000"
    add_valid(
        p.add_argument(
            "--top",
            type=checked(int, top, lambda n: _within(n, 1, 100_000)),
            default=20,
            help="servers and connections listed in the text report (1 to 100000; default 20)",
        ),
        top,
    )
    add_valid(
        p.add_argument(
            "--diagram",
            type=checked(int, number, lambda n: _within(n, 0, 10**9)),
            metavar="N",
            help="draw connection #N as a sequence diagram (needs the plots extra)",
        ),
        number,
    )
    add_valid(
        p.add_argument(
            "--out",
            metavar="FILE",
            type=output_file,
            default=None,
            help="where --diagram writes the picture (.svg or .png; default connection.svg)",
        ),
        OUTPUT_FILE,
    )
    p.set_defaults(func=main)


def _within(n: int, low: int, high: int) -> int:
    if not low <= n <= high:
        raise ValueError(n)
    return n


def main(args) -> int:
    args.out = args.out or "connection.svg"
    if not 1 <= args.top <= 100_000:
        print(f"timewait analyze: --top must be between 1 and 100000, got {args.top}", file=sys.stderr)
        return 2
    try:
        report = analyze(args.capture)
    except (OSError, ValueError) as exc:
        print(f"timewait analyze: {exc}", file=sys.stderr)
        return 2
    if args.diagram is not None:
        found = [i for i in report.incarnations if i.index == args.diagram]
        if not found:
            print(
                f"timewait analyze: --diagram must be between 0 and "
                f"{len(report.incarnations) - 1}, got {args.diagram}",
                file=sys.stderr,
            )
            return 2
        try:
            from . import plots
        except ImportError:
            print(
                "timewait analyze: --diagram needs matplotlib: pip install 'timewait[plots]'", file=sys.stderr
            )
            return 1
        inc = found[0]
        trace = incarnation_trace(args.capture, inc)
        fig = plots.sequence_diagram(
            trace, title=f"#{inc.index} {inc.client} -> {inc.server}: {inc.close_kind}"
        )
        fig.savefig(args.out, bbox_inches="tight")
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(report.text(args.top))
        if args.diagram is not None:
            print(f"\nwrote the sequence diagram of #{args.diagram} to {args.out}")
    return 0
