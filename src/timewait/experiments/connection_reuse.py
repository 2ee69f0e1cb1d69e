"""connection-reuse: the same requests over new connections, one kept-alive connection, or a pool.

An HTTP/1.1 server (the standard library's ``http.server``) listens inside the namespace;
a client (``http.client``) sends ``requests`` GET requests to it with only ``ports``
ephemeral ports to draw from, and ``tcp_tw_reuse`` off. HTTP/1.1 keeps a connection open
after a response unless one side says otherwise (RFC 9112, Section 9.3), so the server
waits for the next request and the client decides when a connection ends. ``mode``:

- ``new-connection``: a fresh connection for each request, closed by the client after the
  response, so each one leaves a TIME_WAIT socket on a client port;
- ``keep-alive``: every request over one connection;
- ``pool``: ``pool_size`` connections, taken in turn.

The client stops at the first request that fails. At the end it closes what it still has
open, and the result counts the client's TIME_WAIT sockets left behind. ``family=6`` runs
server and client on ``::1``.
"""

from __future__ import annotations

import http.client
import http.server
import socket
import threading
from dataclasses import dataclass
from typing import Optional

from .base import Experiment, ExperimentResult, Param, register, shown
from .common import errno_name

SERVER_PORT = 8080
FIRST_PORT = 40000
MODES = ("new-connection", "keep-alive", "pool")


@dataclass(kw_only=True)
class ConnectionReuseResult(ExperimentResult):
    QUIET_OPTIONS = {"family": 4}  # an IPv4 run reads as before IPv6 was an option

    requests_served: int = shown()
    first_error: Optional[str] = shown()  # errno name of the first failed request
    connections_opened: int = shown()
    local_ports_used: int = shown()
    time_wait_left: int = shown()  # the client's TIME_WAIT sockets once it has closed everything
    client_addresses: list  # the local addresses of the client's sockets left in TIME_WAIT


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # persistent connections
    # Buffer the response and send it in one write: headers and body written separately
    # would meet Nagle's algorithm and the client's delayed ACK: tens of ms per request.
    wbufsize = -1

    def do_GET(self):
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep the experiment's stderr for its steps
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


def _client_sockets(lab, ports: int, states=None) -> list:
    return [
        s
        for s in lab.sockets([SERVER_PORT])
        if s.remote[1] == SERVER_PORT
        and FIRST_PORT <= s.local[1] < FIRST_PORT + ports
        and (states is None or s.state in states)
    ]


def body(lab, requests: int, mode: str, pool_size: int, ports: int, family: int = 4) -> dict:
    address = lab.use_family(family)
    lab.step(f"starting an HTTP/1.1 server on {address} port {SERVER_PORT}")
    server = (_Server6 if family == 6 else _Server)((address, SERVER_PORT), _Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    size = {"new-connection": 0, "keep-alive": 1, "pool": pool_size}[mode]
    pool = [http.client.HTTPConnection(address, SERVER_PORT, timeout=5) for _ in range(size)]
    served, opened, first_error = 0, 0, None
    local_ports = set()
    lab.step(f"sending {requests} requests ({mode})")
    try:
        for n in range(requests):
            conn = pool[n % size] if size else http.client.HTTPConnection(address, SERVER_PORT, timeout=5)
            try:
                if conn.sock is None:
                    conn.connect()
                    opened += 1
                    local_ports.add(conn.sock.getsockname()[1])
                conn.request("GET", f"/item/{n}")
                response = conn.getresponse()
                if response.read() != b"ok\n" or response.status != 200:
                    raise RuntimeError(f"request {n}: unexpected response {response.status}")
            except OSError as exc:
                first_error = errno_name(exc)
                conn.close()
                break
            served += 1
            if not size:
                conn.close()  # the client closes first: its port goes to TIME_WAIT
    finally:
        for conn in pool:
            conn.close()
        lab.wait_for(
            lambda: not _client_sockets(lab, ports, {"FIN_WAIT_1", "FIN_WAIT_2", "ESTABLISHED"}),
            "the client's connections to reach TIME_WAIT",
            timeout=10,
        )
        server.shutdown()
        server.server_close()
    time_wait = _client_sockets(lab, ports, {"TIME_WAIT"})
    return {
        "requests_served": served,
        "first_error": first_error,
        "connections_opened": opened,
        "local_ports_used": len(local_ports),
        "time_wait_left": len(time_wait),
        "client_addresses": sorted({s.local[0] for s in time_wait}),
    }


register(
    Experiment(
        name="connection-reuse",
        summary="Requests over new connections, one kept-alive connection, or a small pool.",
        params=(
            Param("requests", int, 100, "HTTP requests to send", minimum=1, maximum=2000),
            Param("mode", str, "new-connection", "how the client uses connections", choices=MODES),
            Param("pool_size", int, 4, "connections in the pool (mode=pool)", minimum=1, maximum=16),
            Param("ports", int, 8, "size of net.ipv4.ip_local_port_range", minimum=1, maximum=1000),
            Param("family", int, 4, "IP version: 4 (127.0.0.1) or 6 (::1)", choices=(4, 6)),
        ),
        body=f"{__name__}:body",
        result=ConnectionReuseResult,
        sysctls=lambda p: {
            "net.ipv4.ip_local_port_range": f"{FIRST_PORT} {FIRST_PORT + p['ports'] - 1}",
            "net.ipv4.tcp_tw_reuse": 0,
        },
        timeout=lambda p: 30.0 + p["requests"] * 0.02,
        variants=tuple({"mode": m} for m in MODES) + ({"mode": "new-connection", "family": 6},),
    )
)
