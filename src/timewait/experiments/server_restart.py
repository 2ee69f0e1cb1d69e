"""server-restart: a server closes first, exits, and a new server binds the same port.

The old server accepts a connection and closes it first, so the TIME_WAIT socket sits on the
server's own port; then it closes its listener. A new listening socket binds the same port
at once. Whether bind() succeeds depends on SO_REUSEADDR on *both* sockets: the TIME_WAIT
socket keeps the flag of the old listener's accepted connection.

On the host tier the port is a free one the kernel picks on the host loopback.
"""
from __future__ import annotations

import errno
import socket
import struct
from dataclasses import dataclass
from typing import Optional

from ..lab import ADDR
from .base import Experiment, ExperimentResult, Param, register

SERVER_PORT = 5000


@dataclass
class ServerRestartResult(ExperimentResult):
    time_wait_on_server_port: bool = False  # just before the new bind
    bind_error: Optional[str] = None  # errno name, None if the new server could bind
    new_server_accepts: Optional[bool] = None  # a new client could connect to it

    SHOWN = ("time_wait_on_server_port", "bind_error", "new_server_accepts")


def _listen(lab, port: int, reuseaddr: bool) -> socket.socket:
    s = lab.track(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    if reuseaddr:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((ADDR, port))
    s.listen(8)
    return s


def body(lab, old_reuseaddr: bool, new_reuseaddr: bool) -> dict:
    lab.step("the old server listens and accepts a connection")
    old = _listen(lab, SERVER_PORT if lab.isolated else 0, old_reuseaddr)
    port = old.getsockname()[1]
    client = lab.connect(port)
    conn, _ = old.accept()
    lab.track(conn)
    lab.step("the old server closes first and exits")
    conn.close()
    client.settimeout(5)
    assert client.recv(1) == b""
    client.close()
    old.close()
    tw = lab.wait_for(lambda: [s for s in lab.sockets([port])
                               if s.local[1] == port and s.state == "TIME_WAIT"],
                      "TIME_WAIT on the server's port")

    lab.step("a new server binds the same port")
    bind_error, accepts = None, None
    try:
        new = _listen(lab, port, new_reuseaddr)
    except OSError as exc:
        bind_error = errno.errorcode.get(exc.errno, str(exc.errno))
    if bind_error is None:
        probe = lab.connect(port)
        peer, _ = new.accept()
        lab.track(peer)
        accepts = True
        # Close the probe with a reset: no further TIME_WAIT left behind on the host.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        probe.close()
    return {"time_wait_on_server_port": bool(tw), "bind_error": bind_error,
            "new_server_accepts": accepts}


register(Experiment(
    name="server-restart",
    summary="Restart a server that closed first: can the new one bind the port in TIME_WAIT?",
    params=(
        Param("old_reuseaddr", bool, False, "SO_REUSEADDR on the old server's listener"),
        Param("new_reuseaddr", bool, False, "SO_REUSEADDR on the new server's listener"),
    ),
    body=f"{__name__}:body",
    result=ServerRestartResult,
    timeout=lambda p: 20.0,
    host_ok=lambda p: True,
    variants=tuple({"old_reuseaddr": o, "new_reuseaddr": n}
                   for o in (False, True) for n in (False, True)),
))
