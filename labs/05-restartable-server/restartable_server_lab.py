"""Support for the restartable-server lab: experiments that run the student's listener and
connection-closing code inside a fresh private network namespace, against a client the
harness controls, and report what the wire and the kernel showed.

``restart_experiment`` leaves the server's side of a connection in TIME_WAIT, closes the
listener and opens it again with the student's ``open_listener``. ``finish_experiment``
serves one request and hands the connection to the student's ``finish``, while the client
has already sent more than the server read; it reports resets, what the client received
and the kernel's abort counters.
"""
from __future__ import annotations

import errno
import fcntl
import os
import socket
import struct
import termios
import threading

import dill

from timewait.sandbox import run_body

CLIENT_PORT = 40000
REQUEST = b"GET /status\n"


def _errno_name(exc: OSError) -> str:
    return errno.errorcode.get(exc.errno, str(exc.errno)) if exc.errno else type(exc).__name__


def _client(sock: socket.socket, extra: bytes, outcome: dict) -> None:
    """Send the request (and whatever else), read until end of file, then close."""
    received = b""
    try:
        sock.sendall(REQUEST + extra)
        sock.settimeout(3)
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                outcome["end"] = "eof"
                break
            received += chunk
    except socket.timeout:
        outcome["end"] = "no end of file within 3 s"
    except OSError as exc:
        outcome["end"] = _errno_name(exc)
    finally:
        outcome["received"] = len(received)
        sock.close()


def _read_request(conn: socket.socket) -> None:
    got = b""
    conn.settimeout(5)
    while len(got) < len(REQUEST):
        chunk = conn.recv(len(REQUEST) - len(got))  # exactly the request, nothing more
        if not chunk:
            raise ConnectionError("the client closed before sending its request")
        got += chunk


def restart_body(lab, payload: str, port: int) -> dict:
    """Leave the server's side of a connection in TIME_WAIT, then restart the listener."""
    open_listener = dill.loads(bytes.fromhex(payload))
    lab.step("opening the listener with open_listener")
    listener = lab.track(open_listener(port))
    reuse = listener.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
    bound = list(listener.getsockname())
    client = lab.connect(port, src_port=CLIENT_PORT)
    conn, _ = listener.accept()
    lab.track(conn)
    outcome: dict = {}
    reader = threading.Thread(target=_client, args=(client, b"", outcome))
    reader.start()
    _read_request(conn)
    conn.sendall(b"200 OK\n")
    conn.close()  # nothing unread: an ordinary close, the server closes first
    reader.join(5)
    lab.wait_for(lambda: lab.state_of(port, CLIENT_PORT) == "TIME_WAIT",
                 "the server's side to reach TIME_WAIT")
    lab.step("stopping the server: closing the listener")
    listener.close()
    lab.step("restarting the server with open_listener")
    restart = "ok"
    try:
        lab.track(open_listener(port)).close()
    except OSError as exc:
        restart = _errno_name(exc)
    return {"reuseaddr": bool(reuse), "bound": bound, "restart": restart,
            "server_side_state": lab.state_of(port, CLIENT_PORT)}


def finish_body(lab, payload: str, port: int, extra: int, reply: int) -> dict:
    """Serve one request, then let the student's ``finish`` end the connection while the
    client has sent ``extra`` bytes the server never read."""
    finish = dill.loads(bytes.fromhex(payload))
    lab.start_capture()
    before = lab.counters()
    listener = lab.listener(port)
    client = lab.connect(port, src_port=CLIENT_PORT)
    conn, _ = listener.accept()
    lab.track(conn)
    outcome: dict = {}
    reader = threading.Thread(target=_client, args=(client, b"x" * extra, outcome))
    reader.start()
    _read_request(conn)
    if extra:
        lab.wait_for(lambda: _unread(conn) >= extra, "the client's extra bytes to arrive")
    conn.sendall(b"r" * reply)
    lab.step("finishing the connection with finish(conn)")
    finish(conn)
    reader.join(5)
    if outcome.get("end") == "eof":
        lab.wait_for(lambda: lab.state_of(CLIENT_PORT, port) == "CLOSED",
                     "the client's side to end", timeout=3)
    lab.settle()
    after = lab.counters()
    trace = lab.trace(CLIENT_PORT, port)
    return {
        "client_end": outcome.get("end", "client still running"),
        "client_received": outcome.get("received", 0),
        "resets": [f"{s.src} {s.flags}" for s in trace if s.has("RST")],
        "aborts": {k: after.get(k, 0) - before.get(k, 0)
                   for k in ("TCPAbortOnClose", "TCPAbortOnLinger", "TCPAbortOnData")},
        "server_side_state": lab.state_of(port, CLIENT_PORT),
        "trace": trace.table(),
    }


def _unread(conn: socket.socket) -> int:
    return struct.unpack("i", fcntl.ioctl(conn.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]


def _run(body: str, func, timeout: float, **params) -> dict:
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.environ.get("PYTHONPATH", "")
    if here not in path.split(os.pathsep):
        os.environ["PYTHONPATH"] = here + (os.pathsep + path if path else "")
    payload = dill.dumps(func, recurse=True).hex()
    return run_body(f"{__name__}:{body}", {"payload": payload, **params}, timeout=timeout)


def restart_experiment(open_listener, port: int = 5000, timeout: float = 20.0) -> dict:
    """Run :func:`restart_body` with ``open_listener(port) -> listening socket``."""
    return _run("restart_body", open_listener, timeout, port=port)


def finish_experiment(finish, port: int = 5000, extra: int = 0, reply: int = 7,
                      timeout: float = 20.0) -> dict:
    """Run :func:`finish_body` with ``finish(conn)``."""
    return _run("finish_body", finish, timeout, port=port, extra=extra, reply=reply)
