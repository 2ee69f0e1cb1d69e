"""proxy-is-a-client: a reverse proxy (Debian's HAProxy) is the client of its backend.

Three hosts, two links, no routing between them: ``client`` (10.0.1.2) sends HTTP requests
with curl to ``proxy`` (10.0.1.1, port 80), where HAProxy, started by the run with a
configuration it generates, forwards each one over a connection of its own to ``backend``
(10.0.100.2, port 8080, a small HTTP server of the run's) from the proxy's address
10.0.100.1::

    client 10.0.1.2 -- 10.0.1.1:80 proxy (HAProxy) 10.0.100.1 -- 10.0.100.2:8080 backend

The proxy's ``ip_local_port_range`` is shrunk, in its own namespace, to ``ports`` ports
(40000...), so the source ports it has towards the one backend address and port are few.
``requests`` curl invocations run one after another, each one request on a connection of
its own, which curl closes when it exits. ``mode`` is how HAProxy treats the connections:

- ``"tcp"`` (``mode tcp``): one backend connection per client connection; HAProxy passes
  each close on to the other side.
- ``"server-close"`` (``option http-server-close``): HTTP, one backend connection per
  request, which HAProxy asks the backend to close (``Connection: close``) and closes
  itself once the response is in; keep-alive towards the client.
- ``"httpclose"`` (``option httpclose``): the same towards the backend, and HAProxy closes
  the client's connection after the response too.
- ``"keep-alive"`` (``option http-keep-alive`` and ``http-reuse always``): backend
  connections stay open and every request may reuse them.

``parallel``: one curl sends all the requests at once (``--parallel``), and the backend takes
``PARALLEL_DELAY`` to answer each, so the proxy needs a port per request in flight.

``backend_closes``: the backend closes after every response, saying ``Connection: close``
(its FIN rides on the response's last segment), as a server does when the request asked it
to; without it, the backend keeps every connection open, whatever the request said. The run
counts the requests that reached the backend with ``Connection: close``.

The run captures both links on the proxy and reports, per leg, how each connection ended (who
reset it, or else who sent the first FIN, or both at once), and who holds TIME_WAIT
afterwards, read from the hosts' socket tables while HAProxy still runs.
"""

from __future__ import annotations

import math
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Optional

from ..topology import Topology
from .base import Experiment, ExperimentResult, Param, register, shown

PROXY_FRONT, PROXY_BACK = "10.0.1.1", "10.0.100.1"
CLIENT_ADDR, BACKEND_ADDR = "10.0.1.2", "10.0.100.2"
FRONT_PORT, BACKEND_PORT = 80, 8080
FIRST_PORT = 40000
CURL_TIMEOUT = 5  # s: curl's --max-time for one request
PARALLEL_DELAY = 1.0  # s: the backend's answer takes this long when requests come at once
HAPROXY = "/usr/sbin/haproxy"
MODES = {
    "tcp": "mode tcp",
    "server-close": "mode http\n  option http-server-close",
    "httpclose": "mode http\n  option httpclose",
    "keep-alive": "mode http\n  option http-keep-alive\n  http-reuse always",
}
# What curl's exit status says the client saw, when there was no HTTP status.
CURL_EXITS = {7: "connection refused", 28: "timeout", 52: "empty reply", 56: "connection reset"}


def haproxy_config(mode: str) -> str:
    """The configuration the run gives HAProxy (read from its standard input)."""
    if mode not in MODES:
        raise ValueError(f"mode: must be one of {', '.join(MODES)}, got {mode!r}")
    return f"""global
  maxconn 256
defaults
  {MODES[mode]}
  retries 3
  timeout connect 1s
  timeout client 5s
  timeout server 5s
frontend web
  bind {PROXY_FRONT}:{FRONT_PORT}
  default_backend app
backend app
  server app1 {BACKEND_ADDR}:{BACKEND_PORT}
"""


@dataclass(kw_only=True)
class ProxyIsAClientResult(ExperimentResult):
    port_budget: int = shown()  # the proxy's source ports towards the backend
    outcomes: dict = shown()  # what curl saw: HTTP status or failure, counted
    first_failure: Optional[int] = shown()  # the first request (1-based) without a 200 (one by one)
    backend_connections: int = shown()  # connections the proxy opened to the backend (SYN|ACKs seen)
    backend_asked_to_close: int = shown()  # requests the backend got with "Connection: close"
    proxy_ports_used: int = shown()  # distinct source ports of the proxy's backend connections
    proxy_messages: dict = shown()  # HAProxy's own stderr lines, counted
    front_closes: dict = shown()  # client leg: who reset, or sent the first FIN
    back_closes: dict = shown()  # backend leg: the same
    time_wait: dict = shown()  # "host (leg)" -> sockets in TIME_WAIT
    proxy_time_wait_timer_s: Optional[int] = shown()  # its TIME_WAIT towards the backend, s (first read)
    request_rate_per_s: float  # the rate the run sent requests at (not shown)
    sustainable_rate_per_s: Optional[float]  # ports / TIME_WAIT: the proxy's limit
    outcome_list: list  # per request, in order (not shown)
    pids: dict  # "haproxy", "curl": processes (gone after the run)
    host_pids: list  # the hosts' holder processes


class Backend:
    """A small HTTP/1.1 server on a listening socket: 200 and three bytes to every request,
    after ``delay`` s; with ``closes=True`` it says ``Connection: close`` and closes first."""

    def __init__(self, listener: socket.socket, closes: bool, delay: float = 0.0):
        self.listener, self.closes, self.delay = listener, closes, delay
        self.heads: list = []  # the head of every request received
        self.listener.settimeout(0.2)
        self.running = True
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while self.running:
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        buf = b""
        try:
            while True:
                data = conn.recv(4096)
                if not data:
                    break  # the peer closed: close too
                buf += data
                while b"\r\n\r\n" in buf:
                    head, buf = buf.split(b"\r\n\r\n", 1)
                    self.heads.append(head.decode("latin-1"))
                    time.sleep(self.delay)
                    if not self.closes:
                        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
                        continue
                    # Corked, the FIN leaves on the response's own segment: the proxy
                    # cannot close first between the two.
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
                    conn.shutdown(socket.SHUT_WR)
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
                    conn.recv(4096)  # until the proxy closes (or resets) its side
                    return
        except OSError:
            pass
        finally:
            conn.close()

    def stop(self) -> None:
        self.running = False
        self.thread.join(timeout=2)


def build(topo: Topology, ports: int) -> None:
    for name in ("client", "proxy", "backend"):
        topo.add_host(name)
    topo.link("client", "proxy", [f"{CLIENT_ADDR}/24"], [f"{PROXY_FRONT}/24"])
    topo.link("proxy", "backend", [f"{PROXY_BACK}/24"], [f"{BACKEND_ADDR}/24"])
    topo.sysctl("proxy", "net.ipv4.ip_local_port_range", f"{FIRST_PORT} {FIRST_PORT + ports - 1}")


def _closes(views: list, server_port: int, names: tuple) -> dict:
    """How each connection to ``server_port`` in a capture ended (a SYN on a 4-tuple whose
    last connection has ended starts a new one): "NAME RST" if a reset ended it; else "NAME
    FIN" for the side that sent the first FIN, or "simultaneous FIN" when the second FIN was
    sent before its sender had the first (its ACK does not cover it: both sides close
    actively); "open" when no FIN or RST was seen. ``names`` = (client side, server side)."""
    conns: list = []  # [first FIN's sender, its end (seq + length + 1), RST's sender, simultaneous]
    current: dict = {}  # client (addr, port) -> its newest connection
    for v in views:
        outbound = v.dst[1] == server_port
        key = v.src if outbound else v.dst
        conn = current.get(key)
        if outbound and v.flags == "SYN" and (conn is None or conn[0] or conn[2]):
            conn = current[key] = ["", 0, "", False]
            conns.append(conn)
        if conn is None or conn[2]:
            continue
        who = names[0] if outbound else names[1]
        if "RST" in v.flags:
            conn[2] = who
        elif "FIN" in v.flags and not conn[0]:
            conn[0], conn[1] = who, (v.seq + v.length + 1) & 0xFFFFFFFF
        elif "FIN" in v.flags and who != conn[0] and not conn[3]:
            conn[3] = ((v.ack - conn[1]) & 0xFFFFFFFF) >= 1 << 31  # ack before the first FIN's end
    out: dict = {}
    for fin, _, rst, simultaneous in conns:
        how = f"{rst} RST" if rst else "simultaneous FIN" if simultaneous else f"{fin} FIN" if fin else "open"
        out[how] = out.get(how, 0) + 1
    return dict(sorted(out.items()))


def _time_wait(topo: Topology) -> dict:
    counts = {"client": 0, "proxy (client leg)": 0, "proxy (backend leg)": 0, "backend": 0}
    for host in ("client", "proxy", "backend"):
        for s in topo.sockets(host):
            if s.state != "TIME_WAIT":
                continue
            if host == "proxy":
                leg = "backend leg" if s.remote[1] == BACKEND_PORT else "client leg"
                counts[f"proxy ({leg})"] += 1
            else:
                counts[host] += 1
    return counts


def _note_timers(topo: Topology, first_seen: dict) -> None:
    """Note the TIME_WAIT timer of each of the proxy's sockets towards the backend the first
    time it is seen (read after every request, so within moments of the close)."""
    for s in topo.sockets("proxy", [BACKEND_PORT]):
        if s.state == "TIME_WAIT" and s.remote[1] == BACKEND_PORT:
            first_seen.setdefault(s.local[1], s.expires_s)


def _outcome(line: str) -> str:
    """What curl saw, from ``-w "%{http_code} %{exitcode}"``: the HTTP status, or the
    failure its exit status names."""
    code, exitcode = line.split()
    if code != "000":
        return code
    return CURL_EXITS.get(int(exitcode), f"curl exit {exitcode}")


def _curl(topo: Topology, pids: list, count: int = 1) -> list:
    """``count`` requests from one curl: one request, or (``count`` > 1) all at once on
    connections of their own (``--parallel``); what curl saw for each."""
    url = f"http://{PROXY_FRONT}:{FRONT_PORT}/"
    argv = ["curl", "-s", "-w", "%{http_code} %{exitcode}\\n", "--max-time", str(CURL_TIMEOUT)]
    if count > 1:
        argv += ["--parallel", "--parallel-immediate", "--parallel-max", str(count)]
    for _ in range(count):
        argv += ["-o", "/dev/null", url]
    proc = topo.popen("client", argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    pids.append(proc.pid)
    out, _ = proc.communicate(timeout=CURL_TIMEOUT + 5)
    return [_outcome(line) for line in out.splitlines() if line.strip()]


def body(lab, mode: str, ports: int, requests: int, backend_closes: bool, parallel: bool) -> dict:
    topo = lab.topology()
    build(topo, ports)
    front = topo.capture("proxy", "eth0")
    back = topo.capture("proxy", "eth1")
    listener = topo.listener("backend", BACKEND_ADDR, BACKEND_PORT, backlog=128)
    backend = Backend(listener, backend_closes, PARALLEL_DELAY if parallel else 0.0)
    lab.step(f"starting HAProxy on proxy ({mode})")
    haproxy = topo.popen(
        "proxy",
        [HAPROXY, "-db", "-f", "/dev/stdin"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    haproxy.stdin.write(haproxy_config(mode))
    haproxy.stdin.close()
    haproxy.stdin = None
    lab.wait_for(
        lambda: (
            haproxy.poll() is not None
            or any(s.state == "LISTEN" for s in topo.sockets("proxy", [FRONT_PORT]))
        ),
        "HAProxy to listen on port 80",
    )
    if haproxy.poll() is not None:
        raise RuntimeError(
            f"HAProxy exited with status {haproxy.returncode}: {haproxy.stderr.read().strip()}"
        )

    curl_pids: list = []
    outcomes = []
    start = time.monotonic()
    if parallel:
        lab.step(f"{requests} requests at once (curl --parallel)")
        outcomes = _curl(topo, curl_pids, requests)
    first_seen: dict = {}  # the proxy's TIME_WAIT sockets towards the backend: timer when first read
    for i in range(0 if parallel else requests):
        lab.step(f"request {i + 1} of {requests} (curl)")
        outcomes += _curl(topo, curl_pids)
        _note_timers(topo, first_seen)
    elapsed = time.monotonic() - start

    lab.step("waiting for the last closes")
    # Settled: every backend-leg connection has ended or (keep-alive) stays open.
    expect_open = mode == "keep-alive" and not backend_closes
    lab.wait_for(
        lambda: (
            not any(
                s.state not in ("LISTEN", "TIME_WAIT")
                for h in ("client", "backend")
                for s in topo.sockets(h)
                if not (expect_open and h == "backend" and s.state == "ESTABLISHED")
            )
        ),
        "every connection to close",
        timeout=5,
    )
    _settle(front, back)
    _note_timers(topo, first_seen)
    time_wait = _time_wait(topo)
    front_views, back_views = front.tcp(), back.tcp()

    lab.step("stopping HAProxy")
    haproxy.send_signal(signal.SIGTERM)
    try:
        _, err = haproxy.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        haproxy.kill()
        _, err = haproxy.communicate(timeout=5)
    backend.stop()
    messages: dict = {}
    for line in err.splitlines():
        line = line.strip()
        if line and not line.startswith(("[NOTICE]", "[WARNING]  (", "Proxy ", "Stopping")):
            messages[line] = messages.get(line, 0) + 1

    accepted = [v for v in back_views if v.flags == "SYN|ACK"]
    failures = [i for i, o in enumerate(outcomes, 1) if o != "200"]
    counts: dict = {}
    for o in outcomes:
        counts[o] = counts.get(o, 0) + 1
    timer = math.ceil(max(first_seen.values())) if first_seen else None
    return {
        "port_budget": ports,
        "outcomes": dict(sorted(counts.items())),
        "first_failure": failures[0] if failures and not parallel else None,
        "backend_connections": len(accepted),
        "backend_asked_to_close": sum(
            any(line.lower().replace(" ", "") == "connection:close" for line in h.split("\r\n"))
            for h in backend.heads
        ),
        "proxy_ports_used": len({v.dst[1] for v in accepted}),
        "proxy_messages": messages,
        "front_closes": _closes(front_views, FRONT_PORT, ("client", "proxy")),
        "back_closes": _closes(back_views, BACKEND_PORT, ("proxy", "backend")),
        "time_wait": time_wait,
        "proxy_time_wait_timer_s": timer,
        "request_rate_per_s": round(requests / elapsed, 1),
        "sustainable_rate_per_s": round(ports / timer, 3) if timer else None,
        "outcome_list": outcomes,
        "pids": {"haproxy": [haproxy.pid], "curl": curl_pids},
        "host_pids": topo.processes(),
    }


def _settle(*captures, quiet: float = 0.2, timeout: float = 3.0) -> None:
    """Until the captures have seen nothing new for ``quiet`` s (their threads lag)."""
    count, changed = -1, time.monotonic()
    deadline = changed + timeout
    while time.monotonic() < deadline:
        n = sum(len(c.snapshot()) for c in captures)
        if n != count:
            count, changed = n, time.monotonic()
        elif time.monotonic() - changed >= quiet:
            return
        time.sleep(0.02)


register(
    Experiment(
        name="proxy-is-a-client",
        summary="HAProxy between curl and a backend: its own ports towards the backend, and who "
        "holds TIME_WAIT on each leg.",
        params=(
            Param("mode", str, "server-close", "how HAProxy handles connections", choices=tuple(MODES)),
            Param(
                "ports", int, 4, "source ports the proxy has (its ip_local_port_range)", minimum=1, maximum=16
            ),
            Param(
                "requests",
                int,
                8,
                "curl requests, one after another, each on its own connection",
                minimum=1,
                maximum=32,
            ),
            Param(
                "backend_closes",
                bool,
                False,
                "the backend closes first after every response ('Connection: close')",
            ),
            Param(
                "parallel",
                bool,
                False,
                "send the requests all at once (curl --parallel); the backend takes 1 s to answer each",
            ),
        ),
        body=f"{__name__}:body",
        result=ProxyIsAClientResult,
        timeout=lambda p: 30.0 + 1.0 * p["requests"],
        topology=True,
        programs=("haproxy", "curl"),
        variants=(
            {},
            {"mode": "tcp"},
            {"mode": "keep-alive"},
            {"mode": "httpclose"},
            {"backend_closes": True},
            {"mode": "tcp", "backend_closes": True},
            {"parallel": True},
            {"mode": "keep-alive", "parallel": True},
        ),
    )
)
