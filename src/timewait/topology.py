"""Several hosts joined by links, inside one experiment's private user namespace.

An experiment body runs in a private user+network namespace of its own (:mod:`timewait.sandbox`).
A :class:`Topology` adds hosts to it: each host is a further network namespace, held open by a
child ``unshare -n`` process that sleeps until teardown. Links are veth pairs with IPv4 and
IPv6 addresses; a router host forwards between its links and may translate addresses
(nftables masquerade, or SNAT to one address and a chosen port range), which also puts
connection tracking to work in its namespace.

Code runs "on" a host in two ways: commands through ``nsenter --net`` (:meth:`Topology.run`,
:meth:`Topology.popen`), and sockets opened in ``with topo.on(host):``, which moves the calling
thread into the host's network namespace with ``setns(2)`` and back again. A socket belongs to
the namespace it was created in for its whole life, so it stays on its host after the block.

Everything lives inside the experiment's own user namespace: when the experiment ends, the
holder processes are killed and the namespaces, links, rules and conntrack tables vanish. The
host's own network, sysctls and ruleset are never touched.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import os
import re
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from typing import Optional

from . import conntrack
from .capture import Capture
from .tiers import tool_path

CLONE_NEWNET = 0x40000000
HOST_NAME = re.compile(r"^[a-z][a-z0-9]{0,9}$")
# Per-host sysctls a topology may set, with their valid ranges.
HOST_SYSCTLS = {
    "net.ipv4.ip_forward": (0, 1),
    "net.ipv6.conf.all.forwarding": (0, 1),
    "net.ipv4.tcp_timestamps": (0, 2),
    "net.ipv4.tcp_tw_reuse": (0, 2),
    "net.ipv4.tcp_syn_retries": (1, 127),
    "net.ipv4.ip_local_port_range": None,  # "low high"
    **{name: (1, 2**31 - 1) for name in conntrack.TIMEOUT_SYSCTLS},
    "net.netfilter.nf_conntrack_max": (1, 2**31 - 1),
    "net.netfilter.nf_conntrack_timestamp": (0, 1),
}

_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def check_host_sysctl(name: str, value) -> str:
    if name not in HOST_SYSCTLS:
        raise ValueError(f"sysctl: {name!r} is not one a topology sets; valid: {sorted(HOST_SYSCTLS)}")
    if HOST_SYSCTLS[name] is None:
        try:
            low, high = (int(x) for x in str(value).split())
        except ValueError:
            low, high = 0, -1
        if not (1 <= low <= high <= 65535):
            raise ValueError(f"{name}: must be 'low high' with 1 <= low <= high <= 65535, got {value!r}")
        return f"{low} {high}"
    lo, hi = HOST_SYSCTLS[name]
    if isinstance(value, bool) or not isinstance(value, int) or not (lo <= value <= hi):
        raise ValueError(f"{name}: must be an integer between {lo} and {hi}, got {value!r}")
    return str(value)


@dataclass
class Host:
    name: str
    pid: int  # the holder process: `unshare -n sleep`
    ns_fd: int  # an open /proc/PID/ns/net
    interfaces: list = field(default_factory=list)  # interface names, in the order added
    addresses: dict = field(default_factory=dict)  # interface -> [address/prefix, ...]


@dataclass(frozen=True)
class Link:
    """A veth pair: ``a`` and ``b`` are (host, interface) of its two ends."""

    a: tuple
    b: tuple

    @property
    def name(self) -> str:
        return f"{self.a[0]}-{self.b[0]}"


class Topology:
    """Build with :meth:`add_host`, :meth:`link`, :meth:`route`, :meth:`forwarding`,
    :meth:`masquerade` or :meth:`snat`; torn down by :meth:`teardown` (the lab does it)."""

    def __init__(self, step=lambda what: None):
        self.hosts: dict = {}
        self.links: list = []
        self.captures: list = []
        self._sockets: list = []
        self._step = step
        self._own_ns = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        self._nat_ready: set = set()

    # --- building ---------------------------------------------------------------------
    def add_host(self, name: str) -> Host:
        if not HOST_NAME.match(name or ""):
            raise ValueError(
                f"host: a name of 1 to 10 lower-case letters and digits, starting with a letter, got {name!r}"
            )
        if name in self.hosts:
            raise ValueError(f"host: {name!r} exists already")
        self._step(f"creating host {name}")
        proc = subprocess.Popen(
            ["unshare", "-n", "--", "sh", "-c", "echo ready; exec sleep 3600"],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        line = proc.stdout.readline().strip()
        if line != "ready":
            proc.kill()
            proc.wait()
            raise RuntimeError(f"host {name}: `unshare -n` did not start (it said {line!r})")
        fd = os.open(f"/proc/{proc.pid}/ns/net", os.O_RDONLY)
        host = Host(name, proc.pid, fd)
        host._proc = proc
        self.hosts[name] = host
        self.run(name, [tool_path("ip"), "link", "set", "lo", "up"])
        return host

    def host(self, name: str) -> Host:
        if name not in self.hosts:
            raise ValueError(f"host: must be one of {', '.join(self.hosts) or 'none yet'}, got {name!r}")
        return self.hosts[name]

    def link(self, a: str, b: str, a_addrs=(), b_addrs=()) -> Link:
        """Join hosts ``a`` and ``b`` with a veth pair; each end is called ``ethN`` on its
        host (N counts that host's links) and gets the given addresses (``"10.0.1.1/24"``,
        ``"fd00:1::1/64"``)."""
        ha, hb = self.host(a), self.host(b)
        ia, ib = f"eth{len(ha.interfaces)}", f"eth{len(hb.interfaces)}"
        self._step(f"linking {a}:{ia} and {b}:{ib}")
        tmp = f"tw{len(self.links)}"
        self.run(
            a, [tool_path("ip"), "link", "add", ia, "type", "veth", "peer", "name", tmp, "netns", str(hb.pid)]
        )
        self.run(b, [tool_path("ip"), "link", "set", tmp, "name", ib])
        for host, iface, addrs in ((ha, ia, a_addrs), (hb, ib, b_addrs)):
            host.interfaces.append(iface)
            for addr in addrs:
                net = ipaddress.ip_interface(addr)
                extra = ["nodad"] if net.version == 6 else []
                self.run(host.name, [tool_path("ip"), "addr", "add", str(net), "dev", iface] + extra)
                host.addresses.setdefault(iface, []).append(str(net))
            self.run(host.name, [tool_path("ip"), "link", "set", iface, "up"])
        link = Link((a, ia), (b, ib))
        self.links.append(link)
        return link

    def address(self, host: str, version: int = 4, iface: Optional[str] = None) -> str:
        """The first IPv4 (``version=4``) or IPv6 address of ``host`` (on ``iface``)."""
        h = self.host(host)
        for name in [iface] if iface else h.interfaces:
            for addr in h.addresses.get(name, []):
                net = ipaddress.ip_interface(addr)
                if net.version == version:
                    return str(net.ip)
        raise ValueError(f"{host} has no IPv{version} address" + (f" on {iface}" if iface else ""))

    def route(self, host: str, destination: str, via: str) -> None:
        """``ip route add destination via via`` on ``host`` (``destination`` may be ``default``;
        the family follows ``via``)."""
        version = ipaddress.ip_address(via).version
        self._step(f"route on {host}: {destination} via {via}")
        self.run(host, [tool_path("ip"), f"-{version}", "route", "add", destination, "via", via])

    def sysctl(self, host: str, name: str, value=None) -> str:
        """Read (``value=None``) or set one of ``host``'s own sysctls."""
        path = "/proc/sys/" + name.replace(".", "/")
        with self.on(host):
            if value is None:
                with open(path) as fh:
                    return fh.read().strip()
            text = check_host_sysctl(name, value)
            self._step(f"setting {name}={text} on {host}")
            with open(path, "w") as fh:
                fh.write(text)
            return text

    def forwarding(self, host: str) -> None:
        """Make ``host`` a router: it forwards IPv4 and IPv6, and tracks connections (an
        nftables forward chain that counts tracked states makes conntrack follow every flow)."""
        self.sysctl(host, "net.ipv4.ip_forward", 1)
        self.sysctl(host, "net.ipv6.conf.all.forwarding", 1)
        self.nft(
            host,
            """
table inet router {
  chain forward {
    type filter hook forward priority filter; policy accept;
    ct state new counter
    ct state established,related counter
    ct state invalid counter
  }
}
""",
        )

    def masquerade(self, host: str, out_iface: str) -> None:
        """Rewrite the source of IPv4 connections leaving ``host`` by ``out_iface`` to that
        interface's address."""
        self._nat_table(host)
        self.nft(host, f"add rule ip nat postrouting oifname {out_iface} meta l4proto tcp masquerade\n")

    def snat(self, host: str, out_iface: str, address: str, ports: Optional[tuple] = None) -> None:
        """Rewrite the source of IPv4 TCP connections leaving by ``out_iface`` to ``address``
        (or a range of them, ``"10.0.100.1-10.0.100.3"``), with source ports from ``ports`` =
        (low, high) when given."""
        for one in address.split("-", 1):
            try:
                ipaddress.IPv4Address(one)
            except ValueError:
                raise ValueError(
                    f"address: must be an IPv4 address or a range 'A-B', got {address!r}"
                ) from None
        target = address
        if ports is not None:
            low, high = ports
            if not (1 <= low <= high <= 65535):
                raise ValueError(f"ports: must be (low, high) with 1 <= low <= high <= 65535, got {ports!r}")
            target += f":{low}-{high}"
        self._nat_table(host)
        self.nft(host, f"add rule ip nat postrouting oifname {out_iface} meta l4proto tcp snat to {target}\n")

    def _nat_table(self, host: str) -> None:
        if host in self._nat_ready:
            return
        self.nft(
            host,
            """
table ip nat {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
  }
}
""",
        )
        self._nat_ready.add(host)

    def nft(self, host: str, script: str) -> str:
        proc = self.run(host, [tool_path("nft"), "-f", "-"], input=script, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"nft on {host} rejected the rules: {proc.stderr.strip()}")
        return proc.stdout

    # --- running code on a host -------------------------------------------------------
    def _nsenter(self, host: str, argv: list) -> list:
        return ["nsenter", f"--net=/proc/{self.host(host).pid}/ns/net", "--"] + list(argv)

    def run(
        self, host: str, argv: list, input: Optional[str] = None, check: bool = True, timeout: float = 10.0
    ) -> subprocess.CompletedProcess:
        """Run a command on ``host`` and wait for it (``check``: raise on a non-zero status)."""
        proc = subprocess.run(
            self._nsenter(host, argv), input=input, capture_output=True, text=True, timeout=timeout
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"on {host}: `{' '.join(argv)}` failed: {proc.stderr.strip()}")
        return proc

    def popen(self, host: str, argv: list, **kwargs) -> subprocess.Popen:
        """Start a command on ``host``; the caller waits for it (teardown kills what is left)."""
        proc = subprocess.Popen(self._nsenter(host, argv), **kwargs)
        self.host(host).__dict__.setdefault("_started", []).append(proc)
        return proc

    @contextlib.contextmanager
    def on(self, host: str):
        """Within the block, this thread is in ``host``'s network namespace: sockets opened
        and /proc/thread-self/net or /proc/sys/net files read there belong to ``host``."""
        _setns(self.host(host).ns_fd)
        try:
            yield self.hosts[host]
        finally:
            _setns(self._own_ns)

    def socket(self, host: str, family: int = 4) -> socket.socket:
        """A TCP socket on ``host`` (closed at teardown if still open)."""
        if family not in (4, 6):
            raise ValueError(f"family: must be 4 or 6, got {family!r}")
        with self.on(host):
            sock = socket.socket(socket.AF_INET6 if family == 6 else socket.AF_INET, socket.SOCK_STREAM)
        self._sockets.append(sock)
        return sock

    def listener(self, host: str, address: str, port: int, backlog: int = 64) -> socket.socket:
        self._step(f"listening on {host} at {address} port {port}")
        sock = self.socket(host, ipaddress.ip_address(address).version)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(backlog)
        return sock

    def connect(
        self, host: str, address: str, port: int, src_port: int = 0, timeout: float = 5.0
    ) -> socket.socket:
        """Connect from ``host`` (from ``src_port`` when given) to ``address``:``port``."""
        self._step(f"connecting from {host} port {src_port or 'any'} to {address} port {port}")
        sock = self.socket(host, ipaddress.ip_address(address).version)
        if src_port:
            sock.bind(("::" if ":" in address else "0.0.0.0", src_port))
        sock.settimeout(timeout)
        sock.connect((address, port))
        return sock

    # --- observation ------------------------------------------------------------------
    def capture(self, host: str, iface: str) -> Capture:
        """Capture on ``host``'s interface ``iface``: both directions, each segment once."""
        if iface not in self.host(host).interfaces:
            raise ValueError(
                f"iface: must be one of {', '.join(self.hosts[host].interfaces)} on {host}, got {iface!r}"
            )
        self._step(f"capturing on {host}:{iface}")
        with self.on(host):
            cap = Capture(iface, link=f"{host}:{iface}").start()
        self.captures.append(cap)
        return cap

    def conntrack(self, host: str) -> list:
        """``host``'s connection-tracking table (:class:`timewait.conntrack.Entry`)."""
        with self.on(host):
            return conntrack.entries()

    def conntrack_access(self, host: str) -> str:
        with self.on(host):
            return conntrack.table_access()

    def conntrack_stats(self, host: str) -> dict:
        with self.on(host):
            return conntrack.stats()

    def conntrack_timeouts(self, host: str) -> dict:
        with self.on(host):
            return conntrack.timeouts()

    def sockets(self, host: str, ports=None) -> list:
        from .observe import socket_table

        with self.on(host):
            return socket_table(ports, root="/proc/thread-self/net")

    # --- teardown ---------------------------------------------------------------------
    def processes(self) -> list:
        """PIDs of every process the topology started (holders and commands)."""
        pids = []
        for h in self.hosts.values():
            pids.append(h.pid)
            pids += [p.pid for p in h.__dict__.get("_started", [])]
        return pids

    def teardown(self) -> None:
        for sock in self._sockets:
            sock.close()
        self._sockets = []
        for cap in self.captures:
            cap.stop()
        self.captures = []
        for h in self.hosts.values():
            for proc in h.__dict__.get("_started", []):
                if proc.poll() is None:
                    proc.kill()
                proc.wait(timeout=5)
            try:  # abort what the kernel keeps for closed sockets, as the lab does
                self.run(h.name, [tool_path("ss"), "-K", "-tan"], check=False)
            except (RuntimeError, OSError, subprocess.SubprocessError):
                pass
        for h in self.hosts.values():
            h._proc.send_signal(signal.SIGKILL)
            h._proc.wait(timeout=5)
            h._proc.stdout.close()
            os.close(h.ns_fd)
        self.hosts = {}
        self.links = []


@dataclass(frozen=True)
class Routed:
    """The addresses of :func:`routed`'s hosts."""

    clients: tuple  # client host names
    client_addr: dict  # client -> (IPv4, IPv6)
    server_addr: tuple  # (IPv4, IPv6)
    router_outside: tuple  # the router's (IPv4, IPv6) on the server's link
    outside_iface: str  # the router's interface towards the server

    def server(self, family: int = 4) -> str:
        return self.server_addr[0 if family == 4 else 1]

    def client(self, name: Optional[str] = None, family: int = 4) -> str:
        return self.client_addr[name or self.clients[0]][0 if family == 4 else 1]


def routed(topo: Topology, clients: int = 1) -> Routed:
    """The course's standard topology: ``clients`` client hosts (``client``, or ``client1``,
    ``client2``...), each on a link of its own to ``router``, which forwards (and tracks
    connections) to ``server`` on a further link.

    client N: 10.0.N.2, fd00:N::2 -- router: 10.0.N.1 ... 10.0.100.1 -- server: 10.0.100.2
    """
    if not 1 <= clients <= 8:
        raise ValueError(f"clients: must be between 1 and 8, got {clients}")
    names = ("client",) if clients == 1 else tuple(f"client{i}" for i in range(1, clients + 1))
    topo.add_host("router")
    addrs = {}
    for i, name in enumerate(names, 1):
        topo.add_host(name)
        topo.link(
            name, "router", [f"10.0.{i}.2/24", f"fd00:{i}::2/64"], [f"10.0.{i}.1/24", f"fd00:{i}::1/64"]
        )
        topo.route(name, "default", f"10.0.{i}.1")
        topo.route(name, "default", f"fd00:{i}::1")
        addrs[name] = (f"10.0.{i}.2", f"fd00:{i}::2")
    topo.add_host("server")
    link = topo.link(
        "router", "server", ["10.0.100.1/24", "fd00:100::1/64"], ["10.0.100.2/24", "fd00:100::2/64"]
    )
    topo.route("server", "default", "10.0.100.1")
    topo.route("server", "default", "fd00:100::1")
    topo.forwarding("router")
    return Routed(names, addrs, ("10.0.100.2", "fd00:100::2"), ("10.0.100.1", "fd00:100::1"), link.a[1])
