"""Support for the port-budget lab: a line server in a private namespace with a small
ephemeral port range, a harness that runs a client written in the notebook against it,
and a time limit for checks.

The server answers each line with the same line in upper case, for as long as a client
keeps its connection open. The harness counts the connections it accepted and the
TIME_WAIT sockets left behind itself, so the checks do not depend on the client's word.
"""
from __future__ import annotations

import os
import socket
import threading

import dill

from timewait.sandbox import run_body
from timewait.timeouts import time_limit  # noqa: F401  (the notebook imports it from here)

SERVER_PORT = 5000
CLOSING_STATES = ("FIN_WAIT_1", "FIN_WAIT_2", "CLOSING", "CLOSE_WAIT", "LAST_ACK")


def ask(sock: socket.socket, message: str) -> str:
    """Send one request line on a connected socket and return the server's reply line."""
    sock.sendall(message.encode() + b"\n")
    reply = b""
    while not reply.endswith(b"\n"):
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("the server closed the connection before replying")
        reply += chunk
    return reply[:-1].decode()


def _serve(lab, listener, accepted: list) -> None:
    def handle(conn):
        with conn:
            reader = conn.makefile("rb")
            for line in reader:
                conn.sendall(line.upper())
            # the client closed first: close our side too (LAST_ACK, then gone)

    while True:
        try:
            conn, peer = listener.accept()
        except OSError:
            return
        accepted.append(peer[1])
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


def harness(lab, payload: str, args: dict) -> dict:
    """Inside the namespace: start the server, run the client, count what it left behind."""
    client = dill.loads(bytes.fromhex(payload))
    listener = lab.listener(SERVER_PORT, backlog=128)
    accepted: list = []
    threading.Thread(target=_serve, args=(lab, listener, accepted), daemon=True).start()
    lab.step("running the client")
    result = client(lab, SERVER_PORT, *args["positional"])
    try:
        lab.wait_for(lambda: not any(s.state in CLOSING_STATES for s in lab.sockets([SERVER_PORT])),
                     "the closes under way to finish", timeout=3)
    except TimeoutError:
        pass  # a connection the client left half-closed: count what there is
    sockets = lab.sockets([SERVER_PORT])
    return {
        "result": result,
        "connections_accepted": len(accepted),
        "client_ports": sorted(set(accepted)),
        "time_wait_sockets": sum(1 for s in sockets if s.state == "TIME_WAIT"),
        "port_range": lab.sysctl("net.ipv4.ip_local_port_range"),
    }


def run_client(client, *positional, port_range=(40000, 40009), timeout: float = 30.0) -> dict:
    """Run ``client(lab, server_port, *positional)`` in a fresh namespace whose ephemeral
    port range is ``port_range`` and where TIME_WAIT sockets are never reused early."""
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.environ.get("PYTHONPATH", "")
    if here not in path.split(os.pathsep):
        os.environ["PYTHONPATH"] = here + (os.pathsep + path if path else "")
    sysctls = {"net.ipv4.ip_local_port_range": f"{port_range[0]} {port_range[1]}",
               "net.ipv4.tcp_tw_reuse": 0}
    payload = dill.dumps(client, recurse=True).hex()
    return run_body(f"{__name__}:harness", {"payload": payload,
                                            "args": {"positional": list(positional)}},
                    sysctls=sysctls, timeout=timeout)
