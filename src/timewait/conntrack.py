"""Observe a network namespace's connection tracking (netfilter conntrack).

The table is read from ``/proc/net/nf_conntrack``: one line per tracked connection, with its
remaining timeout in seconds, the TCP state conntrack keeps for it (its own state machine,
net/netfilter/nf_conntrack_proto_tcp.c, which has a TIME_WAIT of its own), the original
tuple as the first packet had it and the reply tuple a reply must carry (after NAT, the
translated one). The statistics come from ``/proc/net/stat/nf_conntrack`` (one row per
CPU, summed here) and the timeouts from the ``net.netfilter.nf_conntrack_tcp_timeout_*``
sysctls. All of them are per network namespace: read them inside the namespace of interest
(:meth:`timewait.topology.Topology.conntrack`).
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from typing import Optional

ROOT = "/proc/thread-self/net"
TCP_STATES = (
    "SYN_SENT",
    "SYN_RECV",
    "ESTABLISHED",
    "FIN_WAIT",
    "CLOSE_WAIT",
    "LAST_ACK",
    "TIME_WAIT",
    "CLOSE",
    "SYN_SENT2",
)
TIMEOUT_SYSCTLS = tuple(
    f"net.netfilter.nf_conntrack_tcp_timeout_{s}"
    for s in (
        "syn_sent",
        "syn_recv",
        "established",
        "fin_wait",
        "close_wait",
        "last_ack",
        "time_wait",
        "close",
        "max_retrans",
        "unacknowledged",
    )
)
STATS = ("found", "invalid", "insert", "insert_failed", "drop", "early_drop", "clashres", "search_restart")
_TUPLE = re.compile(r"src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)")
_AGE = re.compile(r"delta-time=(\d+)")


@dataclass(frozen=True)
class Entry:
    """One tracked TCP connection."""

    family: int  # 4 or 6
    state: str  # conntrack's TCP state: "ESTABLISHED", "TIME_WAIT", ...
    timeout_s: int  # seconds until the entry expires
    original: tuple  # (src, sport, dst, dport) as the first packet had it
    reply: tuple  # (src, sport, dst, dport) a reply must carry: the translated tuple
    assured: bool  # seen traffic both ways ([ASSURED]); never dropped early
    unreplied: bool  # no reply seen yet ([UNREPLIED])
    age_s: Optional[int] = None  # seconds since the entry was made (nf_conntrack_timestamp=1)

    @property
    def translated(self) -> bool:
        """Did NAT rewrite it: does the reply go to another address or port than the
        original came from?"""
        return (self.reply[2], self.reply[3]) != (self.original[0], self.original[1])

    def to_dict(self) -> dict:
        return asdict(self)


def parse(text: str) -> list:
    """Parse the text of ``/proc/net/nf_conntrack`` into TCP :class:`Entry` objects."""
    entries = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 6 or fields[2] != "tcp":
            continue
        tuples = _TUPLE.findall(line)
        if len(tuples) != 2:
            continue
        (osrc, odst, osp, odp), (rsrc, rdst, rsp, rdp) = tuples
        entries.append(
            Entry(
                family=6 if fields[0] == "ipv6" else 4,
                state=fields[5],
                timeout_s=int(fields[4]),
                original=(_addr(osrc), int(osp), _addr(odst), int(odp)),
                reply=(_addr(rsrc), int(rsp), _addr(rdst), int(rdp)),
                assured="[ASSURED]" in line,
                unreplied="[UNREPLIED]" in line,
                age_s=int(age.group(1)) if (age := _AGE.search(line)) else None,
            )
        )
    return entries


def _addr(text: str) -> str:
    import ipaddress

    return str(ipaddress.ip_address(text))  # /proc writes IPv6 in full; compress it


def entries(root: str = ROOT) -> list:
    """This namespace's tracked TCP connections ([] if conntrack is not loaded)."""
    try:
        with open(os.path.join(root, "nf_conntrack")) as fh:
            return parse(fh.read())
    except FileNotFoundError:
        return []


def find(table: list, port: int) -> list:
    """The entries whose original or reply tuple has ``port`` as a source or destination."""
    return [e for e in table if port in (e.original[1], e.original[3], e.reply[1], e.reply[3])]


def parse_stats(text: str) -> dict:
    """Sum the per-CPU rows of ``/proc/net/stat/nf_conntrack`` (hexadecimal) by column."""
    lines = text.splitlines()
    names = lines[0].split()
    totals = dict.fromkeys(names, 0)
    for line in lines[1:]:
        for name, value in zip(names, line.split(), strict=True):
            totals[name] += int(value, 16)
    totals.pop("entries", None)  # the same global count on every row, not a per-CPU one
    return totals


def table_access(root: str = ROOT) -> str:
    """Who may read the table: its owner and group (as this namespace's user namespace maps
    them) and its permission bits, e.g. ``"uid 0, gid 0, mode 0o440"``."""
    st = os.stat(f"{root}/nf_conntrack")
    return f"uid {st.st_uid}, gid {st.st_gid}, mode {oct(st.st_mode & 0o777)}"


def stats(root: str = ROOT) -> dict:
    """conntrack's counters in this namespace (``insert_failed``, ``drop``, ``early_drop``...)."""
    with open(os.path.join(root, "stat", "nf_conntrack")) as fh:
        return parse_stats(fh.read())


def stats_delta(before: dict, after: dict, names=STATS) -> dict:
    """The counters in ``names`` that moved between two :func:`stats` readings."""
    return {n: after.get(n, 0) - before.get(n, 0) for n in names if after.get(n, 0) != before.get(n, 0)}


def timeouts() -> dict:
    """This namespace's ``nf_conntrack_tcp_timeout_*`` sysctls, in seconds, by TCP state."""
    out = {}
    for name in TIMEOUT_SYSCTLS:
        path = "/proc/sys/" + name.replace(".", "/")
        try:
            with open(path) as fh:
                out[name.rsplit("timeout_", 1)[1]] = int(fh.read())
        except FileNotFoundError:
            continue
    return out


def count_and_max() -> Optional[tuple]:
    """``(nf_conntrack_count, nf_conntrack_max)`` of this namespace, or None without conntrack."""
    try:
        with open("/proc/sys/net/netfilter/nf_conntrack_count") as fh:
            count = int(fh.read())
        with open("/proc/sys/net/netfilter/nf_conntrack_max") as fh:
            return count, int(fh.read())
    except FileNotFoundError:
        return None


def table_text(table: list) -> str:
    """A fixed-width view of entries, like ``conntrack -L``; timeouts left out so that the
    text is the same on every run."""
    rows = [("state", "original (src -> dst)", "reply (src -> dst)", "flags")]
    for e in table:
        flags = " ".join(f for f, on in (("ASSURED", e.assured), ("UNREPLIED", e.unreplied)) if on)
        rows.append(
            (
                e.state,
                f"{_ep(e.original[0], e.original[1])} -> {_ep(e.original[2], e.original[3])}",
                f"{_ep(e.reply[0], e.reply[1])} -> {_ep(e.reply[2], e.reply[3])}",
                flags,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def _ep(addr: str, port: int) -> str:
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"
