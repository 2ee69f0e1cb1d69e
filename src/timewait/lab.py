"""The inside of an experiment: what an experiment body can do in its namespace.

A :class:`Lab` is handed to every experiment body by :mod:`timewait.sandbox`. It sets the
namespace's sysctls, opens sockets, watches the socket table and counters, captures the
loopback, drops or holds segments and delivers them later. Each step is announced with
:meth:`Lab.step` so that a timeout can say where an experiment hung.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Optional

from . import observe
from .capture import Capture, TcpView, to_trace
from .faults import CHAIN, SETUP_RULESET, TABLE, Match, Rule
from .sandbox import STEP_PREFIX
from .tiers import tool_path

if TYPE_CHECKING:
    from .topology import Topology

ADDR = "127.0.0.1"
ADDR6 = "::1"
# The IP versions an experiment may run over, and the namespace's loopback address for each.
LOOPBACK = {4: ADDR, 6: ADDR6}
# The per-namespace sysctls experiments may set, with their valid ranges.
SYSCTLS: dict[str, Optional[tuple[int, int]]] = {
    "net.ipv4.tcp_max_tw_buckets": (0, 2**31 - 1),
    "net.ipv4.tcp_timestamps": (0, 2),
    "net.ipv4.tcp_tw_reuse": (0, 2),
    "net.ipv4.tcp_tw_reuse_delay": (1, 2**31 - 1),
    "net.ipv4.tcp_fin_timeout": (1, 2**31 - 1),
    "net.ipv4.tcp_orphan_retries": (0, 255),
    "net.ipv4.tcp_rfc1337": (0, 1),
    "net.ipv4.tcp_retries2": (0, 255),
    "net.ipv4.tcp_syn_retries": (1, 127),
    "net.ipv4.tcp_early_retrans": (0, 4),
    "net.ipv4.tcp_synack_retries": (1, 255),
    "net.ipv4.ip_local_port_range": None,  # "low high"
}


def sysctl_path(name: str) -> str:
    return "/proc/sys/" + name.replace(".", "/")


def check_sysctl(name: str, value) -> str:
    if name not in SYSCTLS:
        raise ValueError(f"sysctl: {name!r} is not one the experiments set; valid: {sorted(SYSCTLS)}")
    bounds = SYSCTLS[name]
    if bounds is None:  # net.ipv4.ip_local_port_range
        low, high = (int(x) for x in str(value).split())
        if not (1 <= low <= high <= 65535):
            raise ValueError(f"{name}: must be 'low high' with 1 <= low <= high <= 65535, got {value!r}")
        return f"{low} {high}"
    lo, hi = bounds
    if not (lo <= int(value) <= hi):
        raise ValueError(f"{name}: must be between {lo} and {hi}, got {value}")
    return str(int(value))


def check_family(family) -> int:
    """``family`` (4 or 6) checked: a ValueError names the parameter and the valid values."""
    if isinstance(family, bool) or family not in LOOPBACK:
        raise ValueError(f"family: must be 4 or 6, got {family!r}")
    return family


def _tcp_bytes(frame: bytes) -> bytes:
    """The TCP header and payload of an Ethernet+IPv4 or Ethernet+IPv6 frame (to recognise a
    delivered copy). The course's IPv6 segments carry no extension headers."""
    if frame[12:14] == b"\x86\xdd":
        return frame[14 + 40 :]
    ihl = (frame[14] & 0x0F) * 4
    return frame[14 + ihl :]


class Lab:
    def __init__(self, isolated: bool = True):
        self.isolated = isolated
        self.current_step = "starting"
        self.capture: Optional[Capture] = None
        self.rules: list = []
        self.injected: list = []  # (time, Match-like key) of delivered segments
        self._sockets: list = []
        self._nft_ready = False
        self._topology: Optional[Topology] = None
        self.family = 4  # IP version of the sockets below: see use_family()

    # --- life cycle -------------------------------------------------------------------
    def step(self, name: str) -> None:
        self.current_step = name
        print(STEP_PREFIX + name, file=sys.stderr, flush=True)

    def setup(self, sysctls: dict) -> None:
        if self.isolated:
            self.step("bringing up loopback")
            subprocess.run(
                [tool_path("ip"), "link", "set", "lo", "up"], check=True, capture_output=True, timeout=10
            )
            for name, value in sysctls.items():
                self.sysctl(name, value)
        elif sysctls:
            raise ValueError("sysctls: can only be set inside a private namespace (full tier)")

    def teardown(self) -> None:
        for s in self._sockets:
            try:
                s.close()
            except OSError:
                pass
        if self.capture:
            self.capture.stop()
        if self._topology is not None:
            self._topology.teardown()
        if self.isolated:
            self._destroy_leftover_sockets()

    def _destroy_leftover_sockets(self) -> None:
        """Abort every TCP socket still in the namespace (``ss -K``, SOCK_DESTROY).

        A closed socket outlives its process: an orphan in LAST_ACK whose FIN is never
        acknowledged goes on retransmitting for up to two minutes (the closing-states
        chapter). Without ``ss`` (iproute2) or SOCK_DESTROY in the kernel they are left to the kernel's
        own timers."""
        try:
            subprocess.run([tool_path("ss"), "-K", "-tan"], capture_output=True, timeout=10)
        except (RuntimeError, OSError, subprocess.SubprocessError):
            pass

    def topology(self) -> Topology:
        """A :class:`timewait.topology.Topology` of hosts and links inside this experiment's
        namespace (full tier); torn down with the lab."""
        from .topology import Topology

        if not self.isolated:
            raise RuntimeError("a topology needs a private namespace (full tier)")
        if self._topology is None:
            self._topology = Topology(step=self.step)
        return self._topology

    # --- sysctls ----------------------------------------------------------------------
    def sysctl(self, name: str, value=None):
        """Read (``value=None``) or set one of this namespace's sysctls."""
        path = sysctl_path(name)
        if value is None:
            with open(path) as fh:
                return fh.read().strip()
        if not self.isolated:
            raise RuntimeError(f"refusing to set {name} outside a private namespace")
        text = check_sysctl(name, value)
        self.step(f"setting {name}={text}")
        with open(path, "w") as fh:
            fh.write(text)
        return text

    @staticmethod
    def sysctl_exists(name: str) -> bool:
        """Does this kernel have sysctl ``name`` (read-only check: is its /proc file there)?"""
        import os

        return os.path.exists(sysctl_path(name))

    def add_address(self, address: str) -> str:
        """Give the namespace's ``lo`` one more IPv4 address (``address/32``)."""
        import ipaddress

        if not self.isolated:
            raise RuntimeError("adding an address needs a private namespace (full tier)")
        try:
            text = str(ipaddress.IPv4Address(address))
        except ValueError:
            raise ValueError(f"address: must be an IPv4 address, got {address!r}") from None
        self.step(f"adding {text}/32 to lo")
        subprocess.run(
            [tool_path("ip"), "addr", "add", f"{text}/32", "dev", "lo"],
            check=True,
            capture_output=True,
            timeout=10,
        )
        return text

    # --- sockets ----------------------------------------------------------------------
    def use_family(self, family: int) -> str:
        """Open this lab's sockets over IPv4 (127.0.0.1, the default) or IPv6 (::1) from now on;
        returns the loopback address in use. Traces read that address too."""
        self.family = check_family(family)
        if family == 6:
            self.step("using IPv6 on ::1")
        return self.address

    @property
    def address(self) -> str:
        """The loopback address this lab's sockets use: 127.0.0.1 or ::1."""
        return LOOPBACK[self.family]

    def new_socket(self) -> socket.socket:
        """A tracked TCP socket of this lab's family (AF_INET or AF_INET6)."""
        family = socket.AF_INET6 if self.family == 6 else socket.AF_INET
        return self.track(socket.socket(family, socket.SOCK_STREAM))

    def track(self, sock: socket.socket) -> socket.socket:
        self._sockets.append(sock)
        return sock

    def listener(self, port: int, reuseaddr: bool = True, backlog: int = 16) -> socket.socket:
        self.step(f"listening on port {port}")
        s = self.new_socket()
        if reuseaddr:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.address, port))
        s.listen(backlog)
        return s

    def connect(
        self, port: int, src_port: int = 0, reuseaddr: bool = False, timeout: float = 5.0
    ) -> socket.socket:
        self.step(f"connecting from port {src_port or 'any'} to port {port}")
        s = self.new_socket()
        if reuseaddr:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if src_port:
            s.bind((self.address, src_port))
        s.settimeout(timeout)
        s.connect((self.address, port))
        return s

    def accepted(self, listener: socket.socket, src_port: int = 0, reuseaddr: bool = False) -> tuple:
        """A connection to ``listener`` from ``src_port``, accepted: ``(client, server)``."""
        client = self.connect(listener.getsockname()[1], src_port=src_port, reuseaddr=reuseaddr)
        server, _ = listener.accept()
        return client, self.track(server)

    def connection(self, server_port: int, client_port: int) -> tuple:
        """One accepted connection from ``client_port`` to ``server_port``, with the listener
        closed again: ``(client, server)``."""
        listener = self.listener(server_port)
        client, server = self.accepted(listener, client_port)
        listener.close()
        return client, server

    # --- observation ------------------------------------------------------------------
    def sockets(self, ports: Optional[Iterable[int]] = None) -> list:
        return observe.socket_table(ports)

    def state_of(self, local_port: int, remote_port: int) -> str:
        """RFC 9293 state of the socket ``local_port -> remote_port``, ``CLOSED`` if none."""
        for s in observe.socket_table([local_port]):
            if s.local[1] == local_port and s.remote[1] == remote_port:
                return s.state
        return "CLOSED"

    def counters(self) -> dict:
        return observe.counters()

    def wait_for(self, predicate: Callable, what: str, timeout: float = 5.0, interval: float = 0.005):
        """Poll ``predicate()`` until it returns something truthy; return it.

        Raises ``TimeoutError`` naming ``what`` if it does not happen within ``timeout`` s.
        """
        self.step(f"waiting for {what}")
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} did not happen within {timeout:g} s")
            time.sleep(interval)

    # --- capture ----------------------------------------------------------------------
    def start_capture(self) -> Capture:
        self.step("starting packet capture on lo")
        if not self.isolated:
            raise RuntimeError("packet capture needs a private namespace (full tier)")
        self.capture = Capture("lo").start()
        return self.capture

    def settle(self, quiet: float = 0.2, timeout: float = 3.0) -> None:
        """Wait until the capture has taken in every segment sent so far: until it has seen
        nothing new for ``quiet`` seconds. It reads the loopback in a thread of its own,
        which lags behind the kernel on a busy machine."""
        count, changed = -1, time.monotonic()
        deadline = changed + timeout
        while time.monotonic() < deadline:
            now_count = len(self.capture.snapshot()) if self.capture else 0
            if now_count != count:
                count, changed = now_count, time.monotonic()
            elif time.monotonic() - changed >= quiet:
                return
            time.sleep(0.02)

    def segments(self, start: Optional[float] = None, end: Optional[float] = None) -> list:
        return self.capture.tcp(start, end) if self.capture else []

    def wait_for_segment(
        self, match: Match, what: str, timeout: float = 5.0, after: float = 0.0, nth: int = 1
    ) -> TcpView:
        """Wait until the capture has seen the ``nth`` segment matching ``match`` after ``after``."""

        def seen():
            hits = [v for v in self.segments(start=after) if match.matches(v)]
            return hits[nth - 1] if len(hits) >= nth else None

        return self.wait_for(seen, what, timeout)

    def note_for(self, view: TcpView) -> str:
        """How a captured segment fared: "dropped"/"held" by a rule, or "delivered late"."""
        for t, segment in self.injected:
            if abs(view.t - t) < 0.5 and _tcp_bytes(view.frame.data) == segment:
                return "delivered late"
        for rule in self.rules:
            if any(f.t == view.t and f.data == view.frame.data for f in rule.frames):
                return rule.note
        return ""

    def trace(self, client: tuple, server: tuple, start: Optional[float] = None, end: Optional[float] = None):
        """The captured exchange between ``client`` and ``server`` ports, as a Trace."""
        self._assign_rule_frames()
        views = self.segments(start, end)
        return to_trace(views, (self.address, client), (self.address, server), self.note_for)

    def trace_between(self, client: tuple, server: tuple) -> list:
        """The captured exchange between two ``(address, port)`` endpoints (a topology's
        hosts, seen on the link ``self.capture`` watches), as Trace rows."""
        return to_trace(self.segments(), client, server, self.note_for).to_dicts()

    def _assign_rule_frames(self) -> None:
        """Mark, for each rule, the captured segments it dropped: in capture order, the first
        ``count`` matching segments seen while the rule was installed (what numgen counted)."""
        views = self.segments()
        for rule in self.rules:
            hits = [v for v in views if rule.active_at(v.t) and rule.match.matches(v)]
            if rule.count is not None:
                hits = hits[: rule.count]
            rule.frames = [v.frame for v in hits]

    # --- faults -----------------------------------------------------------------------
    def _nft(self, script: str) -> str:
        proc = subprocess.run(
            [tool_path("nft"), "-e", "-a", "-f", "-"],
            input=script,
            text=True,
            capture_output=True,
            timeout=10,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"nft rejected the rule: {proc.stderr.strip()}")
        return proc.stdout

    def drop(self, match: Match, count: Optional[int] = None, note: str = "dropped") -> Rule:
        """Drop segments matching ``match`` (the first ``count`` of them, or all) until removed."""
        if not self.isolated:
            raise RuntimeError("dropping segments needs a private namespace (full tier)")
        if count is not None and count < 1:
            raise ValueError(f"count: must be at least 1 (or None for all), got {count}")
        if not self._nft_ready:
            self.step("creating the namespace's nftables table")
            self._nft(SETUP_RULESET)
            self._nft_ready = True
        rule = Rule(match, count, note, f"rule{len(self.rules) + 1}", time.time())
        self.step(f"adding rule: {note} {match.nft()} (count {count})")
        out = self._nft(f"add rule inet {TABLE} {CHAIN} {rule.nft()}\n")
        found = re.search(r"# handle (\d+)", out)
        rule.handle = int(found.group(1)) if found else None
        rule.added_at = time.time()
        self.rules.append(rule)
        return rule

    def hold(self, match: Match, count: int = 1) -> Rule:
        """Keep the first ``count`` matching segments from arriving; deliver them with :meth:`deliver`."""
        return self.drop(match, count=count, note="held")

    def remove(self, rule: Rule) -> None:
        self.step(f"removing rule {rule.comment}")
        rule.dropped = self.rule_hits(rule)
        rule.removed_at = time.time()
        if rule.handle is not None:
            self._nft(f"delete rule inet {TABLE} {CHAIN} handle {rule.handle}\n")

    def rule_hits(self, rule: Rule) -> int:
        """How many segments the rule has dropped so far (its nftables counter)."""
        out = subprocess.run(
            [tool_path("nft"), "-j", "list", "chain", "inet", TABLE, CHAIN],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
        for item in json.loads(out or '{"nftables": []}')["nftables"]:
            r = item.get("rule")
            if r and r.get("handle") == rule.handle:
                for expr in r["expr"]:
                    if "counter" in expr:
                        return expr["counter"]["packets"]
        return rule.dropped

    def held(self, rule: Rule) -> list:
        """The segments a hold rule kept back (as captured views), oldest first."""
        self._assign_rule_frames()
        return [TcpView.parse(f) for f in rule.frames]

    def deliver(self, view: TcpView, **changes) -> None:
        """Deliver a captured segment now, optionally with TCP fields changed (``seq=``,
        ``ack=``, ``flags=``, ``window=``...). IPv4 and IPv6 segments alike.

        It is sent through a raw IP socket of the segment's family, so it takes the output
        path like any local segment: a frame written straight to ``lo``'s packet socket would
        carry no route and be dropped as a martian. With ``IPPROTO_RAW`` the socket takes the
        whole IP header as given (``IP_HDRINCL`` over IPv4; over IPv6 Linux sets the same for
        ``IPPROTO_RAW``), addresses and hop limit included. Checksums are recomputed (the TCP
        one over the family's pseudo-header): on loopback the captured TCP checksum is only
        partial.
        """
        from scapy.layers.inet import IP, TCP
        from scapy.layers.inet6 import IPv6
        from scapy.layers.l2 import Ether

        frame = Ether(view.frame.data)
        if frame.type not in (0x0800, 0x86DD) or TCP not in frame:
            raise ValueError("view: only TCP segments over IPv4 or IPv6 can be delivered late")
        if self.capture is not None:  # so that the answer to this segment finds room
            self.capture.drain(settle=0)
        pkt = frame[IP] if frame.type == 0x0800 else frame[IPv6]
        for key, value in changes.items():
            setattr(pkt[TCP], key, value)
        if frame.type == 0x0800:
            del pkt.chksum  # IPv6 has no header checksum
            family = socket.AF_INET
        else:
            del pkt.plen
            family = socket.AF_INET6
        del pkt[TCP].chksum
        data = bytes(pkt)
        self.step(f"delivering a {view.flags} segment late")
        self.injected.append((time.time(), bytes(pkt[TCP])))
        with socket.socket(family, socket.SOCK_RAW, socket.IPPROTO_RAW) as s:
            s.sendto(data, (pkt.dst, 0))

    @staticmethod
    def now() -> float:
        return time.time()
