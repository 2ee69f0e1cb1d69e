"""Small helpers the experiment bodies share: errno names, a socket's unacknowledged bytes and
kernel state, a reader thread, the captured segments outside bulk transfers, and a fresh
namespace's sysctl defaults."""

from __future__ import annotations

import errno
import fcntl
import select
import socket
import struct
import termios
import threading
from collections.abc import Callable
from typing import Optional

from ..capture import TcpView
from ..observe import STATES, rfc_state


def errno_name(exc: OSError) -> str:
    """``"EADDRINUSE"`` for an OSError; the exception's type name when it has no errno
    (a socket timeout)."""
    if exc.errno is None:
        return type(exc).__name__
    return errno.errorcode.get(exc.errno, str(exc.errno))


def attempt(call: Callable) -> tuple:
    """``(call(), None)``, or ``(None, errno name)`` if the call raised an OSError."""
    try:
        return call(), None
    except OSError as exc:
        return None, errno_name(exc)


def socket_error(sock: socket.socket) -> Optional[str]:
    """The errno name of the socket's pending error (SO_ERROR), ``None`` if it has none."""
    code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    return errno.errorcode.get(code, str(code)) if code else None


def unacked(sock: socket.socket) -> int:
    """Bytes sent or queued on ``sock`` and not yet acknowledged (SIOCOUTQ)."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]


def tcp_state(sock: socket.socket) -> str:
    """The kernel's state of this very socket (TCP_INFO), whatever its 4-tuple is now."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
    return rfc_state(STATES.get(struct.unpack("B", info[:1])[0], "?"))


def try_port(
    port: int, connect_to: Optional[int] = None, timeout: float = 5.0, address: str = "127.0.0.1"
) -> Optional[str]:
    """Bind a fresh socket to ``address``:``port`` (IPv4 or IPv6, as the address is) and, with
    ``connect_to``, connect it to that port on the same address: ``None`` if that worked, else
    the errno name of the call that failed. The socket is closed again either way."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.bind((address, port))
            if connect_to is not None:
                s.connect((address, connect_to))
        except OSError as exc:
            return errno_name(exc)
    return None


class Reader:
    """A thread that reads ``sock`` into :attr:`got` until end-of-file or :meth:`stop`.

    It polls with select() rather than a socket timeout, which would also apply to another
    thread's sendall() on the same socket."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.got = bytearray()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not select.select([self.sock], [], [], 0.05)[0]:
                    continue
                data = self.sock.recv(1 << 20)
            except (OSError, ValueError):  # closed by another thread
                return
            if not data:
                return
            self.got += data

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


def client_closed_first(lab, server_port: int, client_port: int) -> socket.socket:
    """A connection whose client has closed: the server has read its FIN (CLOSE_WAIT) and the
    client waits in FIN_WAIT_2 for the server's. Returns the server's socket."""
    client, server = lab.connection(server_port, client_port)
    lab.step("client closes")
    client.close()
    server.settimeout(5)
    assert server.recv(100) == b""
    lab.wait_for(
        lambda: lab.state_of(client_port, server_port) == "FIN_WAIT_2", "the client to reach FIN_WAIT_2"
    )
    return server


def close_after_eof(sock) -> None:
    """The passive side reads the peer's FIN, acknowledges it on its own at once
    (TCP_QUICKACK sends the pending ACK), then closes: a separate ACK and FIN on every run,
    rather than one FIN|ACK only when close() beats the delayed-ACK timer."""
    sock.settimeout(5)
    assert sock.recv(100) == b""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
    sock.close()


def read_defaults(lab, names) -> dict:
    """``{name: value}`` for each sysctl as the namespace has it, ``None`` where the kernel
    has no such setting. A value of several fields is given with single spaces."""
    values = {}
    for name in names:
        lab.step(f"reading {name}")
        values[name] = " ".join(lab.sysctl(name).split()) if lab.sysctl_exists(name) else None
    return values


def views_outside(lab, bulks: list) -> list:
    """Captured segments without those sent during the ``(start, end)`` spans of ``bulks``
    (SYNs, FINs and RSTs always kept), over IPv4 or IPv6. Filtering on raw bytes avoids
    parsing thousands of frames; an IPv6 segment's TCP header follows the 40-byte IPv6 header
    (no extension headers on loopback)."""
    views = []
    for f in lab.capture.snapshot():
        d = f.data
        if len(d) >= 54 and d[12:14] == b"\x08\x00" and d[23] == 6:  # IPv4, protocol TCP
            tcp = 14 + (d[14] & 0x0F) * 4
        elif len(d) >= 74 and d[12:14] == b"\x86\xdd" and d[20] == 6:  # IPv6, next header TCP
            tcp = 14 + 40
        else:
            continue
        control = d[tcp + 13] & 0x07  # FIN, SYN, RST
        if control or not any(start <= f.t <= end for start, end in bulks):
            views.append(TcpView.parse(f))
    return views


def host_has_ipv6_loopback() -> bool:
    """Does the host's ``lo`` have ``::1`` (read from /proc/net/if_inet6, nothing changed)?"""
    try:
        with open("/proc/net/if_inet6") as fh:
            return any(
                line.split()[0] == "0" * 31 + "1" and line.split()[-1] == "lo" for line in fh if line.strip()
            )
    except OSError:
        return False
