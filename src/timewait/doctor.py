"""``timewait doctor``: a read-only report on this host's TIME_WAIT, CLOSE_WAIT and port budget.

For on-call engineers who arrive from "Cannot assign requested address" (EADDRNOTAVAIL) or
"too many TIME_WAIT". The report covers the network namespace it runs in (a container sees
only its own sockets) and changes nothing: it opens files under ``/proc`` read-only.

The analysis is a pure function, :func:`diagnose`, of a socket list (as
:func:`timewait.observe.parse_proc_net_tcp` returns it) and a sysctl dict (``/proc/sys`` path
with dots -> raw text), so saved tables and synthetic ones give the same report as the live host.

    timewait doctor [--json] [--top N] [--interval SECONDS] [--proc-root DIR]

Without ``--interval`` the report is one instant snapshot, and its connection rates are
*estimates* from the TIME_WAIT sockets present. With ``--interval`` it also reads the kernel's
counters of opened connections (``/proc/net/snmp``) and of timewait sockets
(``/proc/net/netstat``) twice, that many seconds apart, and reports the *measured* rates.

Where connection tracking is loaded and readable (``/proc/net/nf_conntrack`` is root's only),
the report gains a conntrack section: the table's entries against ``nf_conntrack_max``, TCP
entries by conntrack's state, TIME_WAIT entries per destination with conntrack's own TIME_WAIT
timeout, and, on a NAT gateway, the TIME_WAIT entries that hold a translated source's ports
towards one destination. Without it, one line says why.

To report on another host, copy its files there and read the copy here::

    cp --parents /proc/net/tcp* /proc/net/netstat /proc/net/snmp /proc/net/sockstat \
        /proc/sys/net/ipv4/{tcp_*,ip_local_*} DIR
    # on a NAT gateway or firewall, as root, also:
    cp --parents /proc/net/nf_conntrack \
        /proc/sys/net/netfilter/nf_conntrack_{count,max,tcp_timeout_time_wait} DIR
    timewait doctor --proc-root DIR/proc
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import math
import os
import sys
import textwrap
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Optional

from . import conntrack as ct
from .cli_options import one_line
from .observe import parse_proc_net_tcp, read_proc_counters, read_proc_text, read_sockstat  # noqa: F401

TIME_WAIT_LEN = 60.0  # seconds; TCP_TIMEWAIT_LEN in include/net/tcp.h, not a sysctl
DEFAULT_PORT_RANGE = (32768, 60999)
RECENT_WINDOW = 10.0  # seconds; TIME_WAIT sockets younger than this give the recent rate
SERVER_TIME_WAIT_NOTE = 100  # TIME_WAIT on a listening port worth a line of advice
YOUNG_LOAD = 0.8  # TIME_WAIT count below this share of measured rate x 60 s: a load younger than 60 s
CLOSE_WAIT_LEAK = 10  # CLOSE_WAIT normally lasts microseconds; this many is no accident
FIN_WAIT_2_MANY = 10
BUDGET_WARNING = 0.5
BUDGET_CRITICAL = 0.9
TW_BUCKETS_WARNING = 0.9

SYSCTLS = (
    "net.ipv4.tcp_tw_reuse",
    "net.ipv4.tcp_tw_reuse_delay",
    "net.ipv4.tcp_timestamps",
    "net.ipv4.tcp_max_tw_buckets",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_orphan_retries",
    "net.ipv4.tcp_rfc1337",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_tw_recycle",
)
COUNTERS = ("TW", "TWRecycled", "TWKilled", "TCPTimeWaitOverflow")
# Counters read twice by --interval: Tcp (/proc/net/snmp) and TcpExt (/proc/net/netstat).
OPEN_COUNTERS = ("ActiveOpens", "PassiveOpens")
RATE_COUNTERS = OPEN_COUNTERS + COUNTERS
MAX_INTERVAL = 60.0  # seconds; longer than one TIME_WAIT adds nothing the counters lack
WATCHED_STATES = ("TIME_WAIT", "CLOSE_WAIT", "FIN_WAIT_2")
CT_TABLE_WARNING = 0.8  # conntrack entries against nf_conntrack_max worth a warning
CT_TABLE_CRITICAL = 0.95
NAT_TIME_WAIT_NOTE = 100  # TIME_WAIT entries of one translated source towards one destination
NAT_DEFAULT_PORTS = 65535 - 1024 + 1  # source ports NAT picks from when the rule names no range
CT_TIME_WAIT_DEFAULT = 120  # seconds; nf_conntrack_tcp_timeout_time_wait's default
CT_FILES = (
    "net/nf_conntrack",
    "sys/net/netfilter/nf_conntrack_count",
    "sys/net/netfilter/nf_conntrack_max",
    "sys/net/netfilter/nf_conntrack_tcp_timeout_time_wait",
)


# ---------------------------------------------------------------- report types


@dataclass(frozen=True)
class EndpointCounts:
    """TIME_WAIT, CLOSE_WAIT and FIN_WAIT_2 sockets whose peer is one remote address:port."""

    remote: tuple  # (address, port)
    time_wait: int
    close_wait: int
    fin_wait_2: int

    @property
    def total(self) -> int:
        return self.time_wait + self.close_wait + self.fin_wait_2


@dataclass(frozen=True)
class ServerPortCounts:
    """Sockets of connections this host accepted on one local listening ``port``.

    TIME_WAIT here means this server closed first. It holds only its own 4-tuple, on the
    server's port: it costs this host no ephemeral port, and the client can connect again at
    once from another port.
    """

    port: int
    time_wait: int
    close_wait: int
    fin_wait_2: int
    peers: int  # distinct remote addresses

    @property
    def total(self) -> int:
        return self.time_wait + self.close_wait + self.fin_wait_2


@dataclass(frozen=True)
class DestinationBudget:
    """Local ports used towards one (source address, destination address, destination port).

    connect() needs a 4-tuple nobody else holds, so each such destination has its own pool
    of ``ports`` ephemeral ports, and a port stays held for 60 s in TIME_WAIT after this side
    closes first. Hence at most ``ports / 60`` new connections per second to that destination.
    """

    source: str
    destination: tuple  # (address, port)
    ports: int  # usable ephemeral ports: the range minus reserved ports
    time_wait: int  # TIME_WAIT sockets holding one of those ports
    other_states: int  # sockets in any other state holding one (ESTABLISHED, ...)
    ceiling_rate: float  # new connections per second this destination can sustain
    estimated_rate: float  # time_wait / 60 s: mean rate over the last minute
    recent_rate: float  # from TIME_WAIT sockets entered in the last 10 s
    budget_used: float  # estimated_rate / ceiling_rate
    freed_within_10s: int  # TIME_WAIT sockets whose timer fires within 10 s
    reuse_applies: bool  # tcp_tw_reuse lets connect() take over TIME_WAIT ports here

    @property
    def ports_free(self) -> int:
        return max(self.ports - self.time_wait - self.other_states, 0)


@dataclass(frozen=True)
class Sysctl:
    name: str  # "net.ipv4.tcp_tw_reuse"
    value: Optional[str]  # raw text; None when the file does not exist on this kernel
    meaning: str


@dataclass(frozen=True)
class Advice:
    level: str  # "critical", "warning" or "info"
    topic: str  # "close_wait", "port_budget", ...
    text: str


LEVELS = ("critical", "warning", "info")


@dataclass(frozen=True)
class MeasuredRates:
    """Per-second rates from two readings of the kernel's counters, ``interval_s`` apart.

    ``per_s`` maps a counter to its increase per second: ``ActiveOpens`` (connect() sent a
    SYN: outgoing connections) and ``PassiveOpens`` (connections accepted from a SYN) from
    ``/proc/net/snmp``; ``TW`` (timewait sockets created), ``TWRecycled`` (TIME_WAIT ports
    taken over by tcp_tw_reuse), ``TWKilled`` and ``TCPTimeWaitOverflow`` (closes that skipped
    TIME_WAIT because tcp_max_tw_buckets was reached) from ``/proc/net/netstat``, where present.
    """

    interval_s: float
    per_s: dict
    missing: tuple = ()  # counters absent from either reading

    def rate(self, name: str) -> Optional[float]:
        return self.per_s.get(name)


@dataclass(frozen=True)
class NatTimeWait:
    """conntrack TIME_WAIT entries towards one ``destination`` (the original tuple's
    destination address:port) whose source NAT rewrote to ``translated`` (the reply tuple's
    destination address). Each holds one of that address's ports towards that destination
    until conntrack's TIME_WAIT ends."""

    translated: str
    destination: tuple  # (address, port)
    time_wait: int
    ports: int  # distinct translated ports among all entries of this pair, any state
    clients: int  # distinct original source addresses behind the NAT


@dataclass(frozen=True)
class ConntrackSummary:
    """This namespace's connection-tracking table, read from ``/proc/net/nf_conntrack`` and
    the ``net.netfilter`` sysctls."""

    entries: int  # nf_conntrack_count: every tracked flow, any protocol
    max_entries: Optional[int]  # nf_conntrack_max; None when unreadable
    tcp_states: dict  # conntrack's TCP state -> entries (TCP only)
    time_wait_by_destination: tuple  # ((address, port), TIME_WAIT entries), most first
    time_wait_timeout_s: Optional[int]  # nf_conntrack_tcp_timeout_time_wait
    translated: int  # TCP entries whose source NAT rewrote
    nat_time_wait: tuple  # NatTimeWait, most TIME_WAIT first

    @property
    def used(self) -> Optional[float]:
        return self.entries / self.max_entries if self.max_entries else None

    def to_json(self, top: Optional[int] = None) -> dict:
        return {
            "entries": self.entries,
            "max_entries": self.max_entries,
            "used": self.used,
            "tcp_states": dict(self.tcp_states),
            "time_wait_by_destination": [
                {"destination": _fmt(d), "time_wait": n} for d, n in self.time_wait_by_destination[:top]
            ],
            "time_wait_timeout_s": self.time_wait_timeout_s,
            "translated": self.translated,
            "nat_time_wait": [
                {**asdict(n), "destination": _fmt(n.destination)} for n in self.nat_time_wait[:top]
            ],
        }


@dataclass(frozen=True)
class Report:
    sockets: int
    state_totals: dict  # every state seen -> count
    endpoints: tuple  # EndpointCounts of this host's outgoing connections, most sockets first
    budgets: tuple  # DestinationBudget, most used first
    port_range: tuple  # (low, high) as used for the budget
    usable_ports: int
    sysctls: tuple  # Sysctl, in SYSCTLS order
    counters: dict  # TcpExt counters since boot that concern TIME_WAIT
    advice: tuple  # Advice, most severe first
    time_wait_len: float = TIME_WAIT_LEN
    notes: tuple = field(default=())
    timewait_sockets: int = 0  # sockets on the timewait timer: TIME_WAIT and orphaned FIN_WAIT_2
    measured: Optional[MeasuredRates] = None  # with --interval only
    server_ports: tuple = ()  # ServerPortCounts, most sockets first
    # Share of the connections in the table whose peer is this host too (loopback, or an
    # address of its own): those are counted in both ActiveOpens and PassiveOpens.
    local_peer_share: float = 0.0
    conntrack: Optional[ConntrackSummary] = None
    conntrack_unavailable: str = ""  # why there is no conntrack section, when there is none

    @property
    def estimated_close_rate(self) -> float:
        """TIME_WAIT sockets / 60 s: closes by this host per second over the last minute,
        estimated from one snapshot. It misses TIME_WAIT sockets that tcp_tw_reuse took over
        or a RST ended early, closes past tcp_max_tw_buckets and closes by reset."""
        return self.state_totals.get("TIME_WAIT", 0) / self.time_wait_len

    def with_measured(self, measured: Optional[MeasuredRates]) -> Report:
        """This report with measured rates added, and advice when they disagree with the
        estimate."""
        if measured is None:
            return replace(self, measured=None)
        return replace(_with_rate_advice(self, measured), measured=measured)

    def to_json(self, top: Optional[int] = None) -> dict:
        """A JSON-ready dict; ``top`` keeps the first N endpoints and destinations."""

        def endpoint(e):
            return {**asdict(e), "remote": _fmt(e.remote), "total": e.total}

        def budget(b):
            return {**asdict(b), "destination": _fmt(b.destination), "ports_free": b.ports_free}

        return {
            "sockets": self.sockets,
            "state_totals": dict(self.state_totals),
            "time_wait_len_s": self.time_wait_len,
            "port_range": list(self.port_range),
            "usable_ports": self.usable_ports,
            "server_ports": [{**asdict(p), "total": p.total} for p in self.server_ports[:top]],
            "endpoints_count": len(self.endpoints),
            "endpoints": [endpoint(e) for e in self.endpoints[:top]],
            "destinations_count": len(self.budgets),
            "budgets": [budget(b) for b in self.budgets[:top]],
            "sysctls": {s.name: {"value": s.value, "meaning": s.meaning} for s in self.sysctls},
            "counters": dict(self.counters),
            "advice": [asdict(a) for a in self.advice],
            "notes": list(self.notes),
            "timewait_sockets": self.timewait_sockets,
            "local_peer_share": self.local_peer_share,
            "conntrack": None if self.conntrack is None else self.conntrack.to_json(top),
            "conntrack_unavailable": self.conntrack_unavailable or None,
            "rates": {
                "estimated": {
                    "closes_per_s": self.estimated_close_rate,
                    "basis": "TIME_WAIT sockets / 60 s, from one snapshot",
                },
                "measured": None
                if self.measured is None
                else {
                    "interval_s": self.measured.interval_s,
                    "new_connections_per_s": connections_per_s(self, self.measured),
                    "per_s": dict(self.measured.per_s),
                    "missing": list(self.measured.missing),
                },
            },
        }

    def text(self, top: int = 10) -> str:
        return render_text(self, top=top)


def _fmt(endpoint: tuple) -> str:
    addr, port = endpoint
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


# ---------------------------------------------------------------- sysctls


def _int(sysctls: Mapping, name: str) -> Optional[int]:
    raw = sysctls.get(name)
    if raw is None:
        return None
    try:
        return int(raw.strip())
    except ValueError:
        raise ValueError(f"{name}: expected a whole number, got {raw.strip()!r}") from None


def parse_port_range(raw: str) -> tuple:
    """``"32768\\t60999"`` -> ``(32768, 60999)``."""
    parts = raw.split()
    try:
        low, high = (int(p) for p in parts)
    except ValueError:
        low = high = None
    if low is None or not 1 <= low <= high <= 65535:
        raise ValueError(
            "net.ipv4.ip_local_port_range: expected two port numbers 'low high' "
            f"with 1 <= low <= high <= 65535, got {raw.strip()!r}"
        )
    return low, high


def parse_reserved_ports(raw: str) -> set:
    """``"8080,9000-9100"`` -> the set of those ports (empty text -> empty set)."""
    ports = set()
    for item in raw.strip().split(","):
        item = item.strip()
        if not item:
            continue
        try:
            low, _, high = item.partition("-")
            low, high = int(low), int(high or low)
        except ValueError:
            low = high = None
        if low is None or not 0 <= low <= high <= 65535:
            raise ValueError(
                "net.ipv4.ip_local_reserved_ports: expected ports or ranges like "
                f"'8080,9000-9100' within 0-65535, got {raw.strip()!r}"
            )
        ports.update(range(low, high + 1))
    return ports


_UNDOCUMENTED = "{} = not a documented value (0, 1 or 2)"
_ORPHAN_RETRIES = (
    ": retransmissions of an orphaned socket's FIN (FIN_WAIT_1, CLOSING, LAST_ACK) before the kernel gives up"
)

# What a sysctl's absence means (any other absent one: "absent on this kernel (or not captured)").
_ABSENT = {
    "tcp_tw_recycle": "absent, as expected: removed in Linux 4.12 (it broke clients behind NAT)",
    "tcp_tw_reuse_delay": "absent on this kernel: tcp_tw_reuse takes over TIME_WAIT ports older "
    "than about 1 s",
}

# What a whole-number sysctl's value means: the documented values by value, or a sentence
# written around the value; the fallback (with {}) covers any value without an entry.
_VALUES: dict[str, tuple[dict[int, str], str]] = {
    "tcp_tw_reuse": (
        {
            0: "0 = connect() never takes over a TIME_WAIT port",
            1: "1 = connect() may take over a TIME_WAIT port older than tcp_tw_reuse_delay "
            "when both ends sent timestamps (client side only)",
            2: "2 = like 1 but only for loopback connections; the default of current kernels",
        },
        _UNDOCUMENTED,
    ),
    "tcp_tw_reuse_delay": (
        {},
        "a TIME_WAIT socket must be {} ms old before tcp_tw_reuse may take over its port (default 1000)",
    ),
    "tcp_timestamps": (
        {
            0: "0 = no TCP timestamps: no PAWS, and tcp_tw_reuse can never apply",
            1: "1 = timestamps on, random offset per connection (the default); PAWS protects reused ports",
            2: "2 = timestamps on without random offsets",
        },
        _UNDOCUMENTED,
    ),
    "tcp_max_tw_buckets": (
        {},
        "at most {:,} TIME_WAIT sockets in this namespace; beyond that a closing connection skips "
        "TIME_WAIT (counted as TCPTimeWaitOverflow)",
    ),
    "tcp_fin_timeout": (
        {},
        "an orphaned FIN_WAIT_2 socket (the application already closed it) waits {} s for the "
        "peer's FIN; it does NOT change TIME_WAIT, which is fixed at 60 s",
    ),
    "tcp_orphan_retries": ({0: "0 = the built-in default, 8" + _ORPHAN_RETRIES}, "{}" + _ORPHAN_RETRIES),
    "tcp_rfc1337": (
        {
            0: "0 = a RST received in TIME_WAIT ends it early (TIME_WAIT assassination, RFC 1337); "
            "the default",
            1: "1 = RSTs received in TIME_WAIT are ignored, so TIME_WAIT lasts its 60 s",
        },
        "{} = treated as 1 (non-zero)",
    ),
    "tcp_tw_recycle": (
        {},
        "{}: this kernel predates 4.12; 1 drops SYNs from clients behind NAT, never enable it",
    ),
}


def _port_range_meaning(raw: str) -> str:
    low, high = parse_port_range(raw)
    return f"{high - low + 1:,} ephemeral ports ({low}-{high}) for connect() and bind() to port 0"


def _reserved_ports_meaning(raw: str) -> str:
    n = len(parse_reserved_ports(raw))
    if not n:
        return "none: no ports are held back from automatic choice"
    return f"{n:,} ports never chosen automatically (still usable when asked for by number)"


# What a sysctl written as text (not one number) means.
_TEXTS: dict[str, Callable[[str], str]] = {
    "ip_local_port_range": _port_range_meaning,
    "ip_local_reserved_ports": _reserved_ports_meaning,
}


def _meaning(name: str, sysctls: Mapping) -> str:
    short = name.rsplit(".", 1)[1]
    raw = sysctls.get(name)
    if raw is None:
        return _ABSENT.get(short, "absent on this kernel (or not captured)")
    if short in _TEXTS:
        return _TEXTS[short](raw)
    value = _int(sysctls, name)
    if short not in _VALUES:
        return ""
    documented, other = _VALUES[short]
    return documented.get(value, other.format(value)) if value is not None else ""


# ---------------------------------------------------------------- analysis


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def diagnose(sockets: Iterable, sysctls: Mapping, counters: Optional[Mapping] = None) -> Report:
    """Analyse a socket table and the sysctls into a :class:`Report`. Reads nothing.

    ``sockets``: :class:`timewait.observe.SocketInfo` items (local, remote, state, timer,
    expires_s). ``sysctls``: ``"net.ipv4.tcp_tw_reuse"`` -> raw text, missing keys meaning
    the file is absent. ``counters``: TcpExt counters (``"TW"``, ``"TCPTimeWaitOverflow"``...).
    """
    sockets = list(sockets)
    sysctls = {k: v for k, v in sysctls.items() if v is not None}
    notes = []

    if "net.ipv4.ip_local_port_range" in sysctls:
        port_range = parse_port_range(sysctls["net.ipv4.ip_local_port_range"])
    else:
        port_range = DEFAULT_PORT_RANGE
        notes.append(
            f"ip_local_port_range unreadable: assumed the Linux default "
            f"{DEFAULT_PORT_RANGE[0]}-{DEFAULT_PORT_RANGE[1]}"
        )
    reserved = parse_reserved_ports(sysctls.get("net.ipv4.ip_local_reserved_ports", ""))
    low, high = port_range
    usable = (high - low + 1) - sum(1 for p in reserved if low <= p <= high)
    tw_reuse = _int(sysctls, "net.ipv4.tcp_tw_reuse")
    timestamps = _int(sysctls, "net.ipv4.tcp_timestamps")
    sysctl_rows = tuple(
        Sysctl(n, sysctls[n].strip() if n in sysctls else None, _meaning(n, sysctls)) for n in SYSCTLS
    )

    state_totals = dict(sorted(Counter(s.state for s in sockets).items(), key=lambda kv: (-kv[1], kv[0])))

    # Server side: sockets on a port this host listens on (or, with the listener gone, a
    # local port outside the ephemeral range talking to a peer's port inside it). They are
    # grouped by that local port, the client side by remote endpoint.
    listening = {s.local[1] for s in sockets if s.state == "LISTEN"}

    def server_side(s) -> bool:
        return s.local[1] in listening or (not low <= s.local[1] <= high and low <= s.remote[1] <= high)

    per_remote, per_port, peers = defaultdict(Counter), defaultdict(Counter), defaultdict(set)
    for s in sockets:
        if s.state in WATCHED_STATES:
            if server_side(s):
                per_port[s.local[1]][s.state] += 1
                peers[s.local[1]].add(s.remote[0])
            else:
                per_remote[tuple(s.remote)][s.state] += 1
    endpoints = sorted(
        (EndpointCounts(r, c["TIME_WAIT"], c["CLOSE_WAIT"], c["FIN_WAIT_2"]) for r, c in per_remote.items()),
        key=lambda e: (-e.total, -e.time_wait, e.remote),
    )
    server_ports = sorted(
        (
            ServerPortCounts(p, c["TIME_WAIT"], c["CLOSE_WAIT"], c["FIN_WAIT_2"], len(peers[p]))
            for p, c in per_port.items()
        ),
        key=lambda e: (-e.total, -e.time_wait, e.port),
    )
    connected = [s for s in sockets if s.state not in ("LISTEN", "CLOSED")]
    own = {s.local[0] for s in connected}
    local_peer_share = (
        (sum(1 for s in connected if s.remote[0] in own or _is_loopback(s.remote[0])) / len(connected))
        if connected
        else 0.0
    )

    # A socket spends an ephemeral port when its local port is in the range and is not a
    # port this host listens on (server-side sockets share the listener's port).
    held = defaultdict(list)
    for s in sockets:
        port = s.local[1]
        if (
            s.state not in ("LISTEN", "CLOSED")
            and low <= port <= high
            and port not in listening
            and port not in reserved
        ):
            held[(s.local[0], tuple(s.remote))].append(s)
    budgets = []
    for (source, destination), group in held.items():
        tw = [s for s in group if s.state == "TIME_WAIT"]
        ceiling = usable / TIME_WAIT_LEN if usable else 0.0
        rate = len(tw) / TIME_WAIT_LEN
        recent = sum(1 for s in tw if s.expires_s > TIME_WAIT_LEN - RECENT_WINDOW)
        reuse = bool(timestamps) and (
            tw_reuse == 1 or (tw_reuse == 2 and (_is_loopback(source) or _is_loopback(destination[0])))
        )
        budgets.append(
            DestinationBudget(
                source=source,
                destination=destination,
                ports=usable,
                time_wait=len(tw),
                other_states=len(group) - len(tw),
                ceiling_rate=ceiling,
                estimated_rate=rate,
                recent_rate=recent / RECENT_WINDOW,
                budget_used=rate / ceiling if ceiling else 1.0,
                freed_within_10s=sum(1 for s in tw if s.expires_s <= RECENT_WINDOW),
                reuse_applies=reuse,
            )
        )
    budgets.sort(key=lambda b: (-(b.time_wait + b.other_states), b.source, b.destination))

    counters = {n: counters[n] for n in COUNTERS if counters and n in counters}
    advice = _advise(state_totals, endpoints, budgets, sockets, sysctls, counters, usable, server_ports)
    return Report(
        sockets=len(sockets),
        state_totals=state_totals,
        endpoints=tuple(endpoints),
        server_ports=tuple(server_ports),
        local_peer_share=local_peer_share,
        budgets=tuple(budgets),
        port_range=port_range,
        usable_ports=usable,
        sysctls=sysctl_rows,
        counters=counters,
        advice=tuple(advice),
        notes=tuple(notes),
        timewait_sockets=sum(1 for s in sockets if s.timer == "timewait"),
    )


def _advise(totals, endpoints, budgets, sockets, sysctls, counters, usable, server_ports=()) -> list:
    advice = []
    for p in server_ports:
        if p.time_wait >= SERVER_TIME_WAIT_NOTE:
            advice.append(
                Advice(
                    "info",
                    "server_time_wait",
                    (
                        f"{human(p.time_wait)} TIME_WAIT on :{p.port} (from {human(p.peers)} client "
                        f"address{'es' if p.peers != 1 else ''}), closed by this server: costs this host "
                        "no ephemeral ports. Each holds only its own 4-tuple, so clients connect again "
                        "at once from other ports; what it costs is memory (a few hundred bytes each) "
                        "and a place under tcp_max_tw_buckets."
                    ),
                )
            )
    close_wait = totals.get("CLOSE_WAIT", 0)
    if close_wait:
        # Concentrated on a listening port, the leak is in the server that accepted them;
        # otherwise in the client code that connects to the busiest remote endpoint.
        listening = {s.local[1] for s in sockets if s.state == "LISTEN"}
        local_port, on_port = Counter(s.local[1] for s in sockets if s.state == "CLOSE_WAIT").most_common(1)[
            0
        ]
        worst = max(endpoints, key=lambda e: e.close_wait, default=None)
        if local_port in listening and (worst is None or on_port >= worst.close_wait):
            where = (
                f"{on_port:,} of them accepted on local port {local_port}, which this host "
                "listens on (look at that server)"
            )
        else:
            where = f"{worst.close_wait:,} of them with {_fmt(worst.remote)}"
        if close_wait >= CLOSE_WAIT_LEAK:
            advice.append(
                Advice(
                    "warning",
                    "close_wait",
                    (
                        f"{close_wait:,} sockets in CLOSE_WAIT, {where}. The peer has closed and this "
                        "host's application has not called close(): it leaks sockets. The kernel never "
                        "times CLOSE_WAIT out. Find the process with `ss -tanp state close-wait`; fix "
                        "the code to close a connection when a read returns 0 (EOF) or fails, including "
                        "connections idle in a pool."
                    ),
                )
            )
        else:
            advice.append(
                Advice(
                    "info",
                    "close_wait",
                    (
                        f"{close_wait} socket(s) in CLOSE_WAIT, {where}. Normal if brief; run the report "
                        "again, and if the count grows the application is not closing its sockets."
                    ),
                )
            )

    for b in budgets:
        if b.budget_used <= BUDGET_WARNING:
            continue
        level = "critical" if b.budget_used >= BUDGET_CRITICAL else "warning"
        head = (
            f"{b.source} -> {_fmt(b.destination)}: {b.time_wait:,} TIME_WAIT sockets hold "
            f"{b.budget_used:.0%} of the {b.ports:,} local ports, i.e. an estimated "
            f"{b.estimated_rate:,.0f} new connections/s against a ceiling of "
            f"{b.ceiling_rate:,.0f}/s; {b.ports_free:,} ports free. "
        )
        if b.reuse_applies:
            advice.append(
                Advice(
                    "info",
                    "port_budget",
                    head
                    + (
                        "tcp_tw_reuse applies to this destination, so connect() takes over TIME_WAIT "
                        "ports older than tcp_tw_reuse_delay and the count alone will not cause "
                        "EADDRNOTAVAIL. Reusing connections would still save a handshake each."
                    ),
                )
            )
            continue
        advice.append(
            Advice(
                level,
                "port_budget",
                head
                + (
                    'When no port is free, connect() fails with "Cannot assign requested address". '
                    "Fixes, best first: reuse connections (keep-alive, a connection pool); spread "
                    "the load over more destination addresses or ports, or more source addresses "
                    "(each source/destination pair has its own ports); if the client bind()s before "
                    "connect(), set IP_BIND_ADDRESS_NO_PORT so the port is chosen per destination; "
                    "on this client, net.ipv4.tcp_tw_reuse=1 with tcp_timestamps on at both ends; "
                    "widen ip_local_port_range. Not fixes: SO_LINGER 0 (RST on close, loses data "
                    "and TIME_WAIT's protection) and tcp_tw_recycle (removed in Linux 4.12)."
                ),
            )
        )

    max_tw = _int(sysctls, "net.ipv4.tcp_max_tw_buckets")
    tw_total = totals.get("TIME_WAIT", 0)
    if max_tw and tw_total >= TW_BUCKETS_WARNING * max_tw:
        advice.append(
            Advice(
                "warning",
                "max_tw_buckets",
                (
                    f"{tw_total:,} TIME_WAIT sockets against tcp_max_tw_buckets = {max_tw:,}: past the "
                    "limit, closing connections skip TIME_WAIT and lose its protection against old "
                    "segments. Raise the limit (a TIME_WAIT socket costs a few hundred bytes) or "
                    "reduce the connection rate."
                ),
            )
        )
    overflow = counters.get("TCPTimeWaitOverflow", 0)
    if overflow:
        advice.append(
            Advice(
                "info",
                "max_tw_buckets",
                (
                    f"TCPTimeWaitOverflow = {overflow:,} since boot: tcp_max_tw_buckets has been hit "
                    "at some point, and those connections closed without TIME_WAIT."
                ),
            )
        )

    fin_wait_2 = [s for s in sockets if s.state == "FIN_WAIT_2"]
    if len(fin_wait_2) >= FIN_WAIT_2_MANY:
        orphaned = sum(1 for s in fin_wait_2 if s.timer == "timewait")
        fin_timeout = _int(sysctls, "net.ipv4.tcp_fin_timeout")
        after = f"{fin_timeout} s" if fin_timeout is not None else "tcp_fin_timeout"
        advice.append(
            Advice(
                "warning",
                "fin_wait_2",
                (
                    f"{len(fin_wait_2):,} sockets in FIN_WAIT_2: this host closed and the peers have "
                    "not (often a CLOSE_WAIT leak on their side). "
                    f"{orphaned:,} are orphaned and expire after {after}; "
                    f"{len(fin_wait_2) - orphaned:,} are still held by a process (a half-close with "
                    "shutdown()) and wait for the peer indefinitely."
                ),
            )
        )

    if _int(sysctls, "net.ipv4.tcp_tw_recycle"):
        advice.append(
            Advice(
                "critical",
                "tw_recycle",
                (
                    "net.ipv4.tcp_tw_recycle = 1 drops connections from clients behind NAT; set it to 0 "
                    "(it was removed in Linux 4.12 for this reason)."
                ),
            )
        )
    if _int(sysctls, "net.ipv4.tcp_timestamps") == 0:
        advice.append(
            Advice(
                "info",
                "timestamps",
                (
                    "tcp_timestamps = 0: tcp_tw_reuse cannot take over TIME_WAIT ports and PAWS does "
                    "not guard reused 4-tuples; the default is 1."
                ),
            )
        )
    if usable < 10000:
        advice.append(
            Advice(
                "info",
                "port_range",
                (
                    f"only {usable:,} usable ephemeral ports (ip_local_port_range minus reserved ports): "
                    f"at most {usable / TIME_WAIT_LEN:,.0f} new connections/s to any one destination."
                ),
            )
        )

    if not any(a.level in ("critical", "warning") for a in advice):
        advice.append(
            Advice(
                "info",
                "ok",
                (
                    f"No sign of TIME_WAIT trouble: {tw_total:,} TIME_WAIT, {close_wait:,} CLOSE_WAIT; "
                    f"the busiest destination uses "
                    f"{max((b.budget_used for b in budgets), default=0.0):.0%} of its port budget."
                ),
            )
        )
    advice.sort(key=lambda a: LEVELS.index(a.level))
    return advice


# ---------------------------------------------------------------- conntrack


def summarise_conntrack(
    table: Iterable, count: Optional[int], max_entries: Optional[int], time_wait_timeout: Optional[int]
) -> ConntrackSummary:
    """Analyse conntrack's TCP entries (:func:`timewait.conntrack.parse`) with the table's
    ``count`` (nf_conntrack_count, every protocol; None: the TCP entries are counted) and
    ``max_entries`` (nf_conntrack_max). Reads nothing."""
    table = list(table)
    states = Counter(e.state for e in table)
    tw_dest = Counter((e.original[2], e.original[3]) for e in table if e.state == "TIME_WAIT")
    pairs = defaultdict(list)
    for e in table:
        if e.translated:
            pairs[(e.reply[2], (e.original[2], e.original[3]))].append(e)
    nat = [
        NatTimeWait(
            translated=addr,
            destination=dest,
            time_wait=sum(1 for e in group if e.state == "TIME_WAIT"),
            ports=len({e.reply[3] for e in group}),
            clients=len({e.original[0] for e in group}),
        )
        for (addr, dest), group in pairs.items()
    ]
    return ConntrackSummary(
        entries=len(table) if count is None else count,
        max_entries=max_entries,
        tcp_states=dict(sorted(states.items(), key=lambda kv: (-kv[1], kv[0]))),
        time_wait_by_destination=tuple(sorted(tw_dest.items(), key=lambda kv: (-kv[1], kv[0]))),
        time_wait_timeout_s=time_wait_timeout,
        translated=sum(1 for e in table if e.translated),
        nat_time_wait=tuple(sorted(nat, key=lambda n: (-n.time_wait, -n.ports, n.translated, n.destination))),
    )


def conntrack_advice(summary: ConntrackSummary) -> list:
    """Advice on the conntrack table: near nf_conntrack_max, and a NAT's ports towards one
    destination held by entries in conntrack's TIME_WAIT."""
    advice = []
    timeout = summary.time_wait_timeout_s or CT_TIME_WAIT_DEFAULT
    used = summary.used
    if used is not None and used >= CT_TABLE_WARNING:
        tw = summary.tcp_states.get("TIME_WAIT", 0)
        advice.append(
            Advice(
                "critical" if used >= CT_TABLE_CRITICAL else "warning",
                "conntrack_table",
                (
                    f"conntrack holds {summary.entries:,} entries against nf_conntrack_max = "
                    f"{summary.max_entries:,} ({used:.0%}). When the table is full, a new flow's first "
                    "packet makes conntrack try to drop an entry that has seen no reply (early_drop); "
                    "if it finds none, the packet is dropped and the kernel logs `nf_conntrack: table "
                    "full, dropping packet` (`table full in netns N` in other namespaces on newer kernels; "
                    "__nf_conntrack_alloc() in net/netfilter/nf_conntrack_core.c; "
                    "the drop and early_drop columns of /proc/net/stat/nf_conntrack count them). New "
                    "connections through or to this host then time out while established ones go on. "
                    f"{tw:,} entries are in TIME_WAIT, each kept {timeout} s after its close "
                    "(nf_conntrack_tcp_timeout_time_wait). Make room: fewer closed connections "
                    "(keep-alive), a lower nf_conntrack_tcp_timeout_time_wait, or a larger "
                    "nf_conntrack_max (each entry costs memory)."
                ),
            )
        )
    for n in summary.nat_time_wait:
        if n.time_wait < NAT_TIME_WAIT_NOTE:
            continue
        level = "warning" if n.time_wait >= BUDGET_WARNING * NAT_DEFAULT_PORTS else "info"
        clients = f"{n.clients:,} client address{'es' if n.clients != 1 else ''}"
        advice.append(
            Advice(
                level,
                "nat_ports",
                (
                    f"{n.time_wait:,} conntrack TIME_WAIT entries towards {_fmt(n.destination)} share the "
                    f"translated source {n.translated} (from {clients} behind this NAT): each holds one "
                    f"of {n.translated}'s ports towards {_fmt(n.destination)} for the {timeout} s of "
                    "conntrack's TIME_WAIT, whatever the clients' own sockets do. That is this NAT's "
                    f"port budget per destination: {NAT_DEFAULT_PORTS:,} ports (1024-65535) per "
                    "translated address when the rule names no port range, fewer with "
                    f"`snat to ADDR:LOW-HIGH`; at most about {NAT_DEFAULT_PORTS / timeout:,.0f} new "
                    f"connections/s to one destination, {n.time_wait / timeout:,.1f}/s now. When no "
                    "port is free the NAT drops the SYN (insert_failed and drop in "
                    "/proc/net/stat/nf_conntrack grow) and the client's connect() times out, not "
                    "EADDRNOTAVAIL; Linux takes a TIME_WAIT entry's port over only when the new SYN's "
                    "sequence number is past the old connection's. Fixes measured in the chapter "
                    "NAT port exhaustion: keep connections open (keep-alive: twelve requests, one "
                    "mapping); a wider port range (each port carries one connection at a time to one "
                    "destination); a lower nf_conntrack_tcp_timeout_time_wait on the NAT frees a "
                    "closed connection's port sooner. More SNAT addresses help many clients or "
                    "destinations only: Linux picks the address by a hash of source and destination."
                ),
            )
        )
    return advice


def read_conntrack(proc_root: str = "/proc") -> tuple:
    """``(ConntrackSummary, "")`` when ``net/nf_conntrack`` under ``proc_root`` can be read,
    else ``(None, why)``."""
    path = os.path.join(proc_root, "net", "nf_conntrack")
    text = read_proc_text(path)
    if text is None:
        if os.path.exists(path):
            return None, (
                "net/nf_conntrack exists but this user may not read it (root only); "
                "run as root for the conntrack section"
            )
        if os.path.realpath(proc_root) != "/proc":
            return None, (
                "no net/nf_conntrack in this copy of /proc (not copied, or connection "
                "tracking was not loaded there)"
            )
        return None, (
            "no /proc/net/nf_conntrack: connection tracking is not loaded in this kernel "
            "(no NAT or stateful firewall here)"
        )

    def number(name: str) -> Optional[int]:
        raw = read_proc_text(os.path.join(proc_root, "sys", "net", "netfilter", name))
        if raw is None:
            return None
        try:
            return int(raw.strip())
        except ValueError:
            raise ValueError(f"net.netfilter.{name}: expected a whole number, got {raw.strip()!r}") from None

    summary = summarise_conntrack(
        ct.parse(text),
        number("nf_conntrack_count"),
        number("nf_conntrack_max"),
        number("nf_conntrack_tcp_timeout_time_wait"),
    )
    return summary, ""


def with_conntrack(report: Report, summary: Optional[ConntrackSummary], why: str = "") -> Report:
    """``report`` with its conntrack section (or the reason there is none) and advice."""
    if summary is None:
        return replace(report, conntrack=None, conntrack_unavailable=why)
    extra = conntrack_advice(summary)
    advice = list(report.advice) + extra
    if any(a.level in ("critical", "warning") for a in extra):
        advice = [a for a in advice if a.topic != "ok"]
    advice.sort(key=lambda a: (LEVELS.index(a.level), a.topic == "ok"))
    return replace(report, conntrack=summary, conntrack_unavailable="", advice=tuple(advice))


# ---------------------------------------------------------------- reading /proc


def read_sysctls(proc_root: str = "/proc") -> dict:
    """The sysctls the report explains, as raw text; absent or unreadable files are left out."""
    values = {}
    for name in SYSCTLS:
        text = read_proc_text(os.path.join(proc_root, "sys", *name.split(".")))
        if text is not None:
            values[name] = text.strip()
    return values


def read_counters(proc_root: str = "/proc") -> dict:
    """TcpExt counters from ``net/netstat`` (empty when the file is absent or unreadable)."""
    return read_proc_counters(proc_root).get("TcpExt", {})


def read_open_counters(proc_root: str = "/proc") -> dict:
    """Tcp counters from ``net/snmp`` (ActiveOpens, PassiveOpens, ...); empty when unreadable."""
    return read_proc_counters(proc_root).get("Tcp", {})


def read_rate_counters(proc_root: str = "/proc") -> dict:
    """The counters ``--interval`` compares: :data:`RATE_COUNTERS` that this kernel has."""
    values = {**read_open_counters(proc_root), **read_counters(proc_root)}
    return {n: values[n] for n in RATE_COUNTERS if n in values}


def check_interval(interval) -> float:
    """``interval`` in seconds, 0 < interval <= 60; a ValueError names ``--interval``."""
    try:
        value = float(interval)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(interval, bool) or not 0 < value <= MAX_INTERVAL:
        raise ValueError(
            f"--interval: must be a number of seconds with 0 < interval <= {MAX_INTERVAL:g}, got {interval!r}"
        )
    return value


def measure_rates(
    interval: float,
    proc_root: str = "/proc",
    read: Optional[Callable[[], dict]] = None,
    sleep: Optional[Callable[[float], None]] = None,
    clock: Optional[Callable[[], float]] = None,
) -> MeasuredRates:
    """Read the counters, wait ``interval`` seconds, read them again: rates per second.

    ``read`` (default: :func:`read_rate_counters` of ``proc_root``), ``sleep`` and ``clock``
    are injectable, so a test can hand over two snapshots without waiting. The rate divides
    by the time that passed between the two readings as ``clock`` saw it.
    """
    interval = check_interval(interval)
    if read is None:

        def read():
            return read_rate_counters(proc_root)

    sleep = time.sleep if sleep is None else sleep
    clock = time.monotonic if clock is None else clock
    first, start = read(), clock()
    sleep(interval)
    second, end = read(), clock()
    elapsed = end - start if end > start else interval
    per_s, missing = {}, []
    for name in RATE_COUNTERS:
        if name in first and name in second:
            # Counters only grow; a smaller second reading (a 32-bit wrap) counts as no change.
            per_s[name] = max(second[name] - first[name], 0) / elapsed
        else:
            missing.append(name)
    return MeasuredRates(interval_s=round(elapsed, 6), per_s=per_s, missing=tuple(missing))


def read_sockets(
    proc_root: str = "/proc", clock_ticks: Optional[int] = None, unreadable: Optional[list] = None
) -> list:
    """Every socket in ``net/tcp`` and ``net/tcp6`` under ``proc_root``.

    A file that is absent is skipped; one that exists but cannot be read is skipped too and
    its name appended to ``unreadable``, when given.
    """
    sockets = []
    for name in ("tcp", "tcp6"):
        path = os.path.join(proc_root, "net", name)
        text = read_proc_text(path)
        if text is None:
            if unreadable is not None and os.path.exists(path):
                unreadable.append(f"net/{name}")
            continue
        sockets += parse_proc_net_tcp(text, clock_ticks=clock_ticks)
    return sockets


def examine(
    proc_root: str = "/proc", clock_ticks: Optional[int] = None, interval: Optional[float] = None
) -> Report:
    """Read ``proc_root`` (the live ``/proc`` or a saved copy) and diagnose it.

    With ``interval`` (seconds, 0 < interval <= 60) the report also carries the rates
    :func:`measure_rates` measures over that interval; without it, it returns at once.
    """
    if interval is not None:
        interval = check_interval(interval)
    if not os.path.isdir(proc_root):
        raise ValueError(f"--proc-root: must be a directory holding a copy of /proc, got {proc_root!r}")
    if not any(os.path.exists(os.path.join(proc_root, "net", n)) for n in ("tcp", "tcp6")):
        raise ValueError(f"--proc-root: {proc_root!r} has neither net/tcp nor net/tcp6")
    measured = None
    if interval is not None:
        measured = measure_rates(interval, proc_root)
    unreadable = []
    report = diagnose(
        read_sockets(proc_root, clock_ticks, unreadable), read_sysctls(proc_root), read_counters(proc_root)
    )
    report = with_conntrack(report, *read_conntrack(proc_root))
    if unreadable:
        report = replace(
            report,
            notes=report.notes
            + tuple(
                f"{name} exists but this user may not read it: its sockets are missing" for name in unreadable
            ),
        )
    return report.with_measured(measured)


def human(x) -> str:
    """A number as a person reads it: ``30,000``, ``385``, ``12``, ``5.3``, ``0.25``."""
    if isinstance(x, int):
        return f"{x:,}"
    if abs(x) >= 99.5:
        return f"{x:,.0f}"
    if abs(x) >= 9.95:
        return f"{x:.0f}"
    return f"{x:.2g}"


def human_seconds(s: float) -> str:
    """``2.00056`` -> ``"2.0 s"``; ``65.2`` -> ``"65 s"``."""
    return f"{s:.1f} s" if s < 9.95 else f"{s:,.0f} s"


def connections_per_s(report: Report, measured: MeasuredRates) -> float:
    """New connections per second, each counted once.

    ActiveOpens counts connect()s and PassiveOpens accepted connections; a connection between
    two sockets of this host (loopback) is in both. The share of such connections in the
    socket table (:attr:`Report.local_peer_share`) says how many of the smaller of the two
    rates to take off.
    """
    active = measured.per_s.get("ActiveOpens", 0.0)
    passive = measured.per_s.get("PassiveOpens", 0.0)
    return active + passive - min(active, passive) * report.local_peer_share


def _with_rate_advice(report: Report, measured: MeasuredRates) -> Report:
    """Reason from the measured rates: how many connections, who closes first (TW, the
    timewait sockets this host created), and whether the load is younger than TIME_WAIT, so
    that the snapshot's count has not caught up yet."""
    opens = connections_per_s(report, measured)
    estimate = report.estimated_close_rate
    tw_now = report.state_totals.get("TIME_WAIT", 0)
    tw_rate = measured.per_s.get("TW")
    active = measured.per_s.get("ActiveOpens", 0.0)
    passive = measured.per_s.get("PassiveOpens", 0.0)
    taken = sum(measured.per_s.get(n, 0.0) for n in ("TWRecycled", "TWKilled"))
    steady = None if tw_rate is None else (tw_rate - taken) * report.time_wait_len
    young = steady is not None and steady >= 10 and tw_now < YOUNG_LOAD * steady
    if opens <= 2 * estimate + 1 and not young:
        return report
    head = f"measured {human(opens)} new connections/s over {human_seconds(measured.interval_s)}"
    both = min(active, passive) * report.local_peer_share
    if both >= 0.5:
        head += (
            f" ({human(active)}/s by connect(), {human(passive)}/s accepted; "
            f"{human(both)}/s have both ends on this host and are counted once)"
        )
    parts = [head + f", against an estimated {human(estimate)} closes/s from the TIME_WAIT count."]
    causes = []
    for name, what in (
        ("TWRecycled", "TIME_WAIT ports taken over by tcp_tw_reuse"),
        ("TWKilled", "TIME_WAIT ended early (a RST, RFC 1337)"),
        ("TCPTimeWaitOverflow", "closes past tcp_max_tw_buckets"),
    ):
        if measured.per_s.get(name):
            causes.append(f"{human(measured.per_s[name])}/s {what} ({name})")
    if tw_rate is not None and tw_rate >= 0.5 * opens and opens > 0:
        parts.append(
            f"This host creates {human(tw_rate)} TIME_WAIT sockets/s (TW): it closes "
            "first for most connections."
        )
    elif tw_rate is not None:
        parts.append(
            f"This host creates only {human(tw_rate)} TIME_WAIT sockets/s (TW): for the "
            "others the peers close first or connections end by reset, leaving no "
            "TIME_WAIT here."
        )
    if causes:
        parts.append("; ".join(causes) + " keep the TIME_WAIT count below the rate.")
    if young:
        age = tw_now / (tw_rate - taken) if tw_rate - taken > 0 else 0.0
        parts.append(
            f"At that rate {human(round(steady))} TIME_WAIT sockets are held once a load has run "
            f"for {report.time_wait_len:g} s, and {human(tw_now)} are held now: the load is "
            f"younger than TIME_WAIT (about {human_seconds(age)} old, if steady) or has just "
            "grown. The count and the port budget above will climb; run the report again "
            f"after {report.time_wait_len:g} s."
        )
    elif tw_rate is None and not causes:
        parts.append("No TW counter on this kernel to say who closes first.")
    parts.append("The port budget above uses the snapshot; the measured rate is the one to trust.")
    advice = Advice("info", "rate", " ".join(parts))
    ordered = sorted(report.advice + (advice,), key=lambda a: (LEVELS.index(a.level), a.topic == "ok"))
    return replace(report, advice=tuple(ordered))


# ---------------------------------------------------------------- text


def _table(rows: list) -> list:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  "
        + "  ".join(
            c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in rows
    ]


def render_text(report: Report, top: int = 10) -> str:
    """The report as text for a terminal; ``top`` limits the endpoint and destination tables."""
    lines = [f"TCP sockets: {report.sockets:,}"]
    totals = report.state_totals
    watched = "  ".join(f"{s} {totals.get(s, 0):,}" for s in WATCHED_STATES)
    lines.append(f"  {watched}")
    others = "  ".join(f"{s} {n:,}" for s, n in totals.items() if s not in WATCHED_STATES)
    if others:
        lines.append(f"  {others}")

    if report.server_ports:
        lines += ["", "Server side, per local listening port (TIME_WAIT here: this server closed first)"]
        rows = [("port", "TIME_WAIT", "CLOSE_WAIT", "FIN_WAIT_2", "client addresses")]
        rows += [
            (f":{p.port}", human(p.time_wait), human(p.close_wait), human(p.fin_wait_2), human(p.peers))
            for p in report.server_ports[:top]
        ]
        lines += _table(rows)
        if len(report.server_ports) > top:
            lines.append(f"  ... and {len(report.server_ports) - top:,} more ports")
    lines += ["", "Client side, per remote endpoint (TIME_WAIT, CLOSE_WAIT, FIN_WAIT_2)"]
    if report.endpoints:
        rows = [("remote", "TIME_WAIT", "CLOSE_WAIT", "FIN_WAIT_2")]
        rows += [
            (_fmt(e.remote), f"{e.time_wait:,}", f"{e.close_wait:,}", f"{e.fin_wait_2:,}")
            for e in report.endpoints[:top]
        ]
        lines += _table(rows)
        if len(report.endpoints) > top:
            lines.append(f"  ... and {len(report.endpoints) - top:,} more endpoints")
    else:
        lines.append("  none")

    low, high = report.port_range
    lines += [
        "",
        f"Port budget per destination: {report.usable_ports:,} ports ({low}-{high}"
        f"{', minus reserved' if report.usable_ports != high - low + 1 else ''}) / "
        f"{report.time_wait_len:g} s TIME_WAIT = "
        f"{report.usable_ports / report.time_wait_len:,.0f} new connections/s",
    ]
    if report.budgets:
        rows = [
            (
                "source -> destination",
                "TIME_WAIT",
                "other",
                "free",
                "est. conn/s",
                "last 10 s",
                "used",
                "freed <10 s",
            )
        ]
        rows += [
            (
                f"{b.source} -> {_fmt(b.destination)}",
                f"{b.time_wait:,}",
                f"{b.other_states:,}",
                f"{b.ports_free:,}",
                f"{b.estimated_rate:,.1f}",
                f"{b.recent_rate:,.1f}",
                f"{b.budget_used:.1%}" + (" (reuse)" if b.reuse_applies else ""),
                f"{b.freed_within_10s:,}",
            )
            for b in report.budgets[:top]
        ]
        lines += _table(rows)
        if len(report.budgets) > top:
            lines.append(f"  ... and {len(report.budgets) - top:,} more destinations")
        lines.append(
            "  est. conn/s = TIME_WAIT / 60 s, estimated from one snapshot; "
            "used = est. conn/s / ceiling; (reuse) = tcp_tw_reuse applies"
        )
    else:
        lines.append("  no outgoing connections from ephemeral ports")

    lines += ["", "Connection rate"]
    lines += textwrap.wrap(
        f"estimated: {human(report.estimated_close_rate)} closes/s by this host "
        f"({totals.get('TIME_WAIT', 0):,} TIME_WAIT / {report.time_wait_len:g} s, one "
        "snapshot; it misses TIME_WAIT sockets taken over by tcp_tw_reuse, closes past "
        "tcp_max_tw_buckets and closes by reset)",
        96,
        initial_indent="  ",
        subsequent_indent="      ",
    )
    m = report.measured
    if m is None:
        lines.append("  measured: not measured; --interval SECONDS counts them")
    else:

        def r(name):
            value = m.rate(name)
            return "-" if value is None else human(value)

        lines += textwrap.wrap(
            f"measured over {human_seconds(m.interval_s)}: {human(connections_per_s(report, m))} "
            f"new connections/s, each counted once; {r('ActiveOpens')}/s opened by connect() "
            f"(ActiveOpens), {r('PassiveOpens')}/s accepted (PassiveOpens); timewait sockets "
            f"created {r('TW')}/s (TW), TWKilled {r('TWKilled')}/s; "
            f"TIME_WAIT taken over by tcp_tw_reuse {r('TWRecycled')}/s (TWRecycled); closes "
            f"past tcp_max_tw_buckets {r('TCPTimeWaitOverflow')}/s (TCPTimeWaitOverflow)",
            96,
            initial_indent="  ",
            subsequent_indent="      ",
            break_on_hyphens=False,
        )
        if m.missing:
            lines.append(f"      not on this kernel: {', '.join(m.missing)}")

    lines += render_conntrack(report, top)

    lines += ["", "Sysctls"]
    for s in report.sysctls:
        value = "-" if s.value is None else s.value.replace("\t", " ")
        lines.append(f"  {s.name.removeprefix('net.ipv4.')} = {value}")
        lines += textwrap.wrap(s.meaning, 96, initial_indent="      ", subsequent_indent="      ")
    if report.counters:
        lines += ["", "Counters since boot: " + "  ".join(f"{k} {v:,}" for k, v in report.counters.items())]

    lines += ["", "Advice"]
    for a in report.advice:
        lines += textwrap.wrap(f"[{a.level}] {a.text}", 96, initial_indent="  ", subsequent_indent="      ")
    for note in report.notes:
        lines.append(f"  note: {note}")
    return "\n".join(lines)


def render_conntrack(report: Report, top: int = 10) -> list:
    """The conntrack section's lines (with a blank line first); one line when there is none."""
    c = report.conntrack
    if c is None:
        if not report.conntrack_unavailable:
            return []
        return ["", f"Connection tracking: not read: {report.conntrack_unavailable}"]
    of = "" if c.max_entries is None else f" of nf_conntrack_max {c.max_entries:,} ({c.used:.1%})"
    lines = ["", f"Connection tracking (conntrack): {c.entries:,} entries{of}"]
    if c.tcp_states:
        lines.append("  TCP: " + "  ".join(f"{s} {n:,}" for s, n in c.tcp_states.items()))
    else:
        lines.append("  TCP: none")
    timeout = "-" if c.time_wait_timeout_s is None else f"{c.time_wait_timeout_s} s"
    lines.append(
        f"  nf_conntrack_tcp_timeout_time_wait = {timeout}; entries rewritten by source NAT: {c.translated:,}"
    )
    if c.time_wait_by_destination:
        rows = [("destination (original tuple)", "TIME_WAIT")]
        rows += [(_fmt(d), f"{n:,}") for d, n in c.time_wait_by_destination[:top]]
        lines += _table(rows)
        if len(c.time_wait_by_destination) > top:
            lines.append(f"  ... and {len(c.time_wait_by_destination) - top:,} more destinations")
    if c.nat_time_wait:
        rows = [("translated source -> destination", "TIME_WAIT", "ports", "clients")]
        rows += [
            (f"{n.translated} -> {_fmt(n.destination)}", f"{n.time_wait:,}", f"{n.ports:,}", f"{n.clients:,}")
            for n in c.nat_time_wait[:top]
        ]
        lines += _table(rows)
        if len(c.nat_time_wait) > top:
            lines.append(f"  ... and {len(c.nat_time_wait) - top:,} more")
    return lines


# ---------------------------------------------------------------- command line


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        return check_interval(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a number of seconds with 0 < SECONDS <= {MAX_INTERVAL:g}, got {text!r}"
        ) from None


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``doctor`` on an argparse ``subparsers`` object."""
    parser = subparsers.add_parser(
        "doctor",
        help="read-only report on this host's TIME_WAIT and port budget",
        description="Count TIME_WAIT, CLOSE_WAIT and FIN_WAIT_2 sockets, compute the port "
        "budget per destination, explain the relevant sysctls and give advice; where "
        "connection tracking is readable, also its table against nf_conntrack_max and "
        "NAT's ports per destination. Reads /proc only; changes nothing.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Reading another host: copy its files with\n"
        "  cp --parents /proc/net/tcp* /proc/net/netstat /proc/net/snmp "
        "/proc/sys/net/ipv4/{tcp_*,ip_local_*} DIR\n"
        "(with conntrack, as root, also /proc/net/nf_conntrack and\n"
        "/proc/sys/net/netfilter/nf_conntrack_{count,max,tcp_timeout_time_wait})\n"
        "and run: timewait doctor --proc-root DIR/proc",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--top",
        type=_positive_int,
        default=10,
        metavar="N",
        help="show the N busiest endpoints and destinations (>= 1; default 10)",
    )
    parser.add_argument(
        "--interval",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="also measure connection rates: read the kernel's counters twice, "
        f"SECONDS apart (0 < SECONDS <= {MAX_INTERVAL:g}); without it the "
        "report is instant and its rates are estimates",
    )
    parser.add_argument(
        "--proc-root",
        default="/proc",
        metavar="DIR",
        help="read a saved copy of /proc instead of the live one",
    )
    parser.set_defaults(func=main)
    return parser


def main(args) -> int:
    try:
        if args.top < 1:
            raise ValueError(f"--top: must be a whole number >= 1, got {args.top}")
        report = examine(args.proc_root, interval=getattr(args, "interval", None))
    except ValueError as exc:
        print(f"timewait doctor: {one_line(exc)}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.to_json(top=args.top), indent=2))
    else:
        print(report.text(top=args.top))
    return 0
