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
import socket
import struct
import termios
import threading
import time

import dill

from timewait.labkit import call_student, describe_crash, lab_tier, run_student, time_limit  # noqa: F401

CLIENT_PORT = 40000
REQUEST = b"GET /status\n"
# The client closes its side this long after the reply's end of file, as a client busy with
# the reply would: a server that closes without draining meets the unread bytes every time,
# not only when it happens to be slower than the client's FIN.
CLIENT_CLOSE_DELAY = 0.5


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
                time.sleep(CLIENT_CLOSE_DELAY)
                break
            received += chunk
    except TimeoutError:
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
    listener, crash = call_student(lab, open_listener, port)
    if crash:
        return {"student_error": crash}
    lab.track(listener)
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
    lab.wait_for(
        lambda: lab.state_of(port, CLIENT_PORT) == "TIME_WAIT", "the server's side to reach TIME_WAIT"
    )
    lab.step("stopping the server: closing the listener")
    listener.close()
    lab.step("restarting the server with open_listener")
    restart = "ok"
    try:
        lab.track(open_listener(port)).close()
    except OSError as exc:  # what the restart is about: EADDRINUSE
        restart = _errno_name(exc)
    except Exception as exc:  # noqa: BLE001 (any other mistake in the student's code)
        return {"student_error": describe_crash(exc, open_listener, lab.current_step)}
    return {
        "reuseaddr": bool(reuse),
        "bound": bound,
        "restart": restart,
        "server_side_state": lab.state_of(port, CLIENT_PORT),
    }


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
    _, crash = call_student(lab, finish, conn)
    if crash:
        return {"student_error": crash}
    reader.join(5)
    if outcome.get("end") == "eof":
        lab.wait_for(
            lambda: lab.state_of(CLIENT_PORT, port) == "CLOSED", "the client's side to end", timeout=3
        )
    lab.settle()
    after = lab.counters()
    trace = lab.trace(CLIENT_PORT, port)
    return {
        "client_end": outcome.get("end", "client still running"),
        "client_received": outcome.get("received", 0),
        "resets": [f"{s.src} {s.flags}" for s in trace if s.has("RST")],
        "aborts": {
            k: after.get(k, 0) - before.get(k, 0)
            for k in ("TCPAbortOnClose", "TCPAbortOnLinger", "TCPAbortOnData")
        },
        "server_side_state": lab.state_of(port, CLIENT_PORT),
        "trace": trace.table(),
    }


def _unread(conn: socket.socket) -> int:
    return struct.unpack("i", fcntl.ioctl(conn.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]


def restart_experiment(open_listener, port: int = 5000, timeout: float = 20.0) -> dict:
    """Run :func:`restart_body` with ``open_listener(port) -> listening socket``."""
    return run_student(
        __file__, "restart_body", open_listener, "your open_listener", timeout=timeout, port=port
    )


def finish_experiment(
    finish, port: int = 5000, extra: int = 0, reply: int = 7, timeout: float = 20.0
) -> dict:
    """Run :func:`finish_body` with ``finish(conn)``."""
    return run_student(
        __file__, "finish_body", finish, "your finish", timeout=timeout, port=port, extra=extra, reply=reply
    )


def check_restart(run: dict, port: int) -> None:
    """Question 1's checks: the listener came back while its old connection sat in TIME_WAIT."""
    assert run["bound"] == ["127.0.0.1", port], (
        f"The listener is bound to {tuple(run['bound'])}; the server listens on "
        f"('127.0.0.1', {port}), the port it was given."
    )
    assert run["server_side_state"] == "TIME_WAIT", (
        f"After the server closed its connection first, its side was {run['server_side_state']} "
        f"instead of TIME_WAIT, so the restart was not tested."
    )
    assert run["restart"] == "ok", (
        f"Opening the listener again, while the old connection sat in TIME_WAIT, failed with "
        f"{run['restart']}. A listener that is to be reopened must say so before bind() "
        f"(a socket option; setting it after bind() is too late)."
    )
    assert run["reuseaddr"], (
        "The listener came back although SO_REUSEADDR is not set on it: the restart worked "
        "for a reason this lab does not teach. Set SO_REUSEADDR before bind()."
    )


def check_finish(run: dict, reply: int, extra: int) -> None:
    """Question 2's checks: the whole reply, then end of file, no reset, no abort counted."""
    aborts = run["aborts"]
    if aborts.get("TCPAbortOnData") or aborts.get("TCPAbortOnLinger"):
        why = (
            " The kernel counted a close with a zero linger timeout: SO_LINGER 0 throws away "
            "what is unsent and resets the connection instead of closing it."
        )
    elif extra:
        why = (
            f" The client had sent {extra} bytes the server never read: close() with unread "
            f"data resets the connection. Drain what the client sends until its end of file, "
            f"then close."
        )
    else:
        why = ""
    unread = why
    assert run["resets"] == [], (
        f"The connection was reset ({', '.join(run['resets'])}); the client saw "
        f"{run['client_end']} after {run['client_received']} of {reply} bytes.{unread}"
    )
    assert run["client_end"] == "eof", (
        f"The client read {run['client_received']} of {reply} bytes and then saw "
        f"{run['client_end']!r} instead of an end of file. Send your FIN with "
        f"shutdown(SHUT_WR) once the reply is written."
    )
    assert run["client_received"] == reply, (
        f"The client received {run['client_received']} of the {reply} bytes of the reply."
    )
    assert run["server_side_state"] == "TIME_WAIT", (
        f"The server closed first, so its side should hold TIME_WAIT; it is "
        f"{run['server_side_state']}.{unread}"
    )
    counted = {k: v for k, v in run["aborts"].items() if v}
    assert not counted, f"The kernel counted an abort: {counted}.{unread}"
