"""Observe a network namespace: its TCP socket table and its kernel counters.

The socket table is read from ``/proc/net/tcp`` and ``/proc/net/tcp6``, which show every
TCP socket of the reading process's network namespace, TIME_WAIT ones included, with the
kind of timer that is running and when it fires.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import socket
import struct
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Optional

# include/net/tcp_states.h
STATES = {
    0x01: "ESTABLISHED",
    0x02: "SYN_SENT",
    0x03: "SYN_RECV",
    0x04: "FIN_WAIT1",
    0x05: "FIN_WAIT2",
    0x06: "TIME_WAIT",
    0x07: "CLOSE",
    0x08: "CLOSE_WAIT",
    0x09: "LAST_ACK",
    0x0A: "LISTEN",
    0x0B: "CLOSING",
    0x0C: "NEW_SYN_RECV",
}
# The "tr" column of /proc/net/tcp (net/ipv4/tcp_ipv4.c, get_tcp4_sock and get_timewait4_sock).
TIMERS = {0: "off", 1: "retransmit", 2: "keepalive", 3: "timewait", 4: "probe"}
# RFC 9293 spelling, used everywhere else in the course.
RFC_NAMES = {
    "FIN_WAIT1": "FIN_WAIT_1",
    "FIN_WAIT2": "FIN_WAIT_2",
    "CLOSE": "CLOSED",
    "SYN_RECV": "SYN_RECEIVED",
    "NEW_SYN_RECV": "SYN_RECEIVED",
}


def rfc_state(kernel_name: str) -> str:
    """Kernel state name -> RFC 9293 name (``FIN_WAIT2`` -> ``FIN_WAIT_2``)."""
    return RFC_NAMES.get(kernel_name, kernel_name)


@dataclass(frozen=True)
class SocketInfo:
    local: tuple  # (address, port)
    remote: tuple
    state: str  # RFC 9293 name: "TIME_WAIT", "FIN_WAIT_2", ...
    timer: str  # "off", "retransmit", "keepalive", "timewait", "probe"
    expires_s: float  # seconds until that timer fires (0 when off)
    retransmits: int
    send_queue: int
    recv_queue: int

    def to_dict(self) -> dict:
        return asdict(self)


def _address(hexaddr: str) -> tuple:
    host, port = hexaddr.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        addr = socket.inet_ntop(socket.AF_INET, struct.pack("<I", int(host, 16)))
    else:  # four little-endian 32-bit words
        words = struct.unpack("<4I", raw)
        addr = str(ipaddress.IPv6Address(struct.pack(">4I", *words)))
        mapped = ipaddress.IPv6Address(addr).ipv4_mapped
        addr = str(mapped) if mapped else addr
    return addr, int(port, 16)


def parse_proc_net_tcp(text: str, clock_ticks: Optional[int] = None) -> list:
    """Parse the text of ``/proc/net/tcp`` or ``/proc/net/tcp6`` into :class:`SocketInfo`."""
    hz = clock_ticks or os.sysconf("SC_CLK_TCK")
    sockets = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 7:
            continue
        tx, rx = (int(x, 16) for x in fields[4].split(":"))
        tr, when = fields[5].split(":")
        timer = TIMERS.get(int(tr, 16), f"timer-{int(tr, 16)}")
        sockets.append(
            SocketInfo(
                local=_address(fields[1]),
                remote=_address(fields[2]),
                state=rfc_state(STATES.get(int(fields[3], 16), fields[3])),
                timer=timer,
                expires_s=int(when, 16) / hz if timer != "off" else 0.0,
                retransmits=int(fields[6], 16),
                send_queue=tx,
                recv_queue=rx,
            )
        )
    return sockets


def socket_table(ports: Optional[Iterable[int]] = None, root: str = "/proc/net") -> list:
    """Every TCP socket of this namespace (or those with a local or remote port in ``ports``).
    ``root="/proc/thread-self/net"`` reads the namespace of the calling thread (a topology's
    host, in ``with topo.on(host):``)."""
    found = []
    for path in (f"{root}/tcp", f"{root}/tcp6"):
        text = read_proc_text(path)
        if text is not None:
            found += parse_proc_net_tcp(text)
    if ports is not None:
        wanted = set(ports)
        found = [s for s in found if s.local[1] in wanted or s.remote[1] in wanted]
    return sorted(found, key=lambda s: (s.local[1], s.remote[1], s.state))


def ss_text(sockets: Iterable, timers: bool = True) -> str:
    """``ss -tan``-like text. Timers are shown in whole seconds, rounded up, as ``ss -o`` does."""
    rows = [("State", "Recv-Q", "Send-Q", "Local Address:Port", "Peer Address:Port", "Timer")]
    for s in sockets:
        timer = ""
        if timers and s.timer != "off":
            timer = f"{s.timer} ({math.ceil(s.expires_s)} s)"
        rows.append(
            (
                s.state,
                str(s.recv_queue),
                str(s.send_queue),
                f"{s.local[0]}:{s.local[1]}",
                f"{s.remote[0]}:{s.remote[1]}",
                timer,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


# Counters the course talks about (TcpExt unless marked Tcp:).
COUNTERS = (
    "TW",
    "TWRecycled",
    "TWKilled",
    "TCPTimeWaitOverflow",
    "PAWSEstab",
    "PAWSActive",
    "TCPAbortOnData",
    "TCPAbortOnClose",
    "TCPAbortOnTimeout",
    "TCPAbortOnLinger",
    "TCPChallengeACK",
    "TCPSYNChallenge",
    "OutOfWindowIcmps",
    "TCPACKSkippedSynRecv",
    "TCPACKSkippedPAWS",
    "TCPACKSkippedSeq",
    "TCPACKSkippedTimeWait",
    "TCPRcvCoalesce",
    "Tcp:OutRsts",
    "Tcp:EstabResets",
    "Tcp:RetransSegs",
    "Tcp:AttemptFails",
)


def read_proc_text(path: str) -> Optional[str]:
    """A /proc file's text, or None when it is absent or this user may not read it."""
    try:
        with open(path) as fh:
            return fh.read()
    except (FileNotFoundError, PermissionError):
        return None


def paired_counters(text: str) -> dict:
    """``/proc/net/snmp`` and ``netstat`` hold pairs of lines, names then values:
    ``{"Tcp": {"ActiveOpens": 3, ...}, "TcpExt": {...}, ...}``."""
    lines = text.splitlines()
    table: dict = {}
    for head, data in zip(lines[::2], lines[1::2], strict=False):  # a lone last line is ignored
        prefix, names = head.split(":", 1)
        data_prefix, nums = data.split(":", 1)
        if prefix == data_prefix:
            table.setdefault(prefix, {}).update(
                zip(names.split(), (int(v) for v in nums.split()), strict=True)
            )
    return table


def read_proc_counters(proc_root: str = "/proc") -> dict:
    """:func:`paired_counters` of ``net/snmp`` and ``net/netstat`` under ``proc_root`` (a file
    that is absent or unreadable adds nothing)."""
    table: dict = {}
    for name in ("snmp", "netstat"):
        text = read_proc_text(os.path.join(proc_root, "net", name))
        for prefix, values in paired_counters(text or "").items():
            table.setdefault(prefix, {}).update(values)
    return table


def read_sockstat(proc_root: str = "/proc") -> dict:
    """``net/sockstat`` as ``{"TCP": {"inuse": 1, "tw": 165, ...}, ...}`` (empty when
    unreadable). Its ``tw`` is the kernel's own count of timewait sockets in this namespace."""
    text = read_proc_text(os.path.join(proc_root, "net", "sockstat"))
    table = {}
    for line in (text or "").splitlines():
        proto, _, rest = line.partition(":")
        words = rest.split()
        table[proto] = {k: int(v) for k, v in zip(words[::2], words[1::2], strict=False) if v.isdigit()}
    return table


def counters() -> dict:
    """All TcpExt and Tcp counters of this namespace; TcpExt ones without prefix."""
    table = read_proc_counters()
    return {**{f"Tcp:{n}": v for n, v in table.get("Tcp", {}).items()}, **table.get("TcpExt", {})}


def counter_delta(before: dict, after: dict, names: Iterable[str] = COUNTERS, nonzero: bool = True) -> dict:
    """``after - before`` for the named counters (only the ones that moved, by default)."""
    delta = {n: after.get(n, 0) - before.get(n, 0) for n in names}
    return {n: d for n, d in delta.items() if d} if nonzero else delta


# ``ss`` state filters (ss(8), "STATE-FILTER") and the RFC 9293 names they select.
SS_STATES = {
    "established": "ESTABLISHED",
    "syn-sent": "SYN_SENT",
    "syn-recv": "SYN_RECEIVED",
    "fin-wait-1": "FIN_WAIT_1",
    "fin-wait-2": "FIN_WAIT_2",
    "time-wait": "TIME_WAIT",
    "close-wait": "CLOSE_WAIT",
    "last-ack": "LAST_ACK",
    "closing": "CLOSING",
    "listening": "LISTEN",
}
# What ``ss -o`` calls each timer of /proc/net/tcp's "tr" column (ss.c, tmr_name).
SS_TIMER_NAMES = {"retransmit": "on", "keepalive": "keepalive", "timewait": "timewait", "probe": "persist"}
_SS_TIMER = re.compile(r"timer:\(([\w-]+),[^,()]+,(\d+)\)")


def normalise_ss_row(row: str) -> str:
    """One row of ``ss -Htano`` with single spaces between fields and the timer's time left
    replaced by ``<t>`` (``timer:(on,208ms,1)`` -> ``timer:(on,<t>,1)``), so that runs compare
    equal; the timer's kind and retransmission count are kept."""
    return _SS_TIMER.sub(r"timer:(\1,<t>,\2)", " ".join(row.split()))


def ss_rows(state: str, normalise: bool = True) -> Optional[list]:
    """The rows of ``ss -Htano state STATE`` for this process's network namespace (inside an
    experiment, its private one), sorted; ``None`` when ``ss`` (iproute2) is not installed."""
    if state not in SS_STATES:
        raise ValueError(f"state: must be one of {', '.join(SS_STATES)}, got {state!r}")
    import subprocess

    from .tiers import find_tool

    ss = find_tool("ss")
    if ss is None:
        return None
    out = subprocess.run(
        [ss, "-Htano", "state", state], capture_output=True, text=True, timeout=10, check=True
    ).stdout
    rows = [line for line in out.splitlines() if line.strip()]
    return sorted(normalise_ss_row(r) if normalise else " ".join(r.split()) for r in rows)


def ss_like_rows(sockets: Iterable, state: str) -> list:
    """Rows in the normalised ``ss -Htano state STATE`` format, made from a socket table read
    from /proc/net/tcp: the fallback when ``ss`` is missing."""
    want = SS_STATES[state]
    rows = []
    for s in sockets:
        if s.state != want:
            continue
        row = f"{s.recv_queue} {s.send_queue} {s.local[0]}:{s.local[1]} {s.remote[0]}:{s.remote[1]}"
        if s.timer != "off":
            row += f" timer:({SS_TIMER_NAMES.get(s.timer, s.timer)},<t>,{s.retransmits})"
        rows.append(row)
    return sorted(rows)
