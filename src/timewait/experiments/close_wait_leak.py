"""close-wait-leak: a server that never closes the connections its clients have closed.

The client opens ``connections`` connections and closes each one. The server's application
reads end-of-file (recv() returns b"") but, unless ``server_closes`` is set, never calls
close(): each of its sockets stays in CLOSE_WAIT. CLOSE_WAIT has no timer in the kernel (the
timer column of /proc/net/tcp reads "off"), so nothing ends it but the application. The
clients' orphaned FIN_WAIT_2 sockets give up after ``tcp_fin_timeout``; after ``hold``
seconds the body looks again, and finally lets the server write into one leaked
connection, whose peer no longer knows it.

With ``fd_limit`` set, the server runs in a process of its own (forked inside the
experiment's process, as a real server is not its clients' process) whose soft
RLIMIT_NOFILE is ``fd_limit``. Each leaked socket keeps a descriptor, so after
``fd_limit`` minus the server's own descriptors accept() fails with EMFILE. The clients are
not limited: they go on connecting, and the body records what they see (connect(), then a
request that waits ``hold`` seconds for a reply), the listener's accept queue (its Recv-Q)
and the socket table. The limit is set in that forked process only: it ends with it, and the
caller's process (a notebook kernel, a test) never has its limit changed.

``family=6`` runs it over IPv6, on ``::1``.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import time
from dataclasses import dataclass
from typing import Optional

from ..observe import ss_text
from .base import Experiment, ExperimentResult, Param, register, shown
from .common import errno_name

SERVER_PORT = 5000
FIRST_PORT = 40000
LISTENER_FD, CHANNEL_FD = 3, 4  # where the forked server keeps its two sockets


@dataclass(kw_only=True)
class CloseWaitLeakResult(ExperimentResult):
    """Two kinds of run: without fd_limit the clients close and the server reads (fields marked
    "no limit"), with it a server process runs out of descriptors (fields marked "fd_limit");
    a field of the other kind is None."""

    # no limit: server sockets in CLOSE_WAIT just after the clients closed
    close_wait_at_start: Optional[int] = shown(default=None, unless="fd_limit")
    # fd_limit: the server process and what its clients saw
    server_descriptors: Optional[int] = shown(default=None, when="fd_limit")  # open before accept()
    accepted: Optional[int] = shown(default=None, when="fd_limit")  # connections the server accepted
    accept_errors: Optional[dict] = shown(default=None, when="fd_limit")  # errno name -> count
    client_connects: Optional[dict] = shown(default=None, when="fd_limit")  # "connected"/errno -> count
    # a request sent on a connection nobody accepted
    reply_to_queued_request: Optional[str] = shown(default=None, when="fd_limit")
    listen_queue: Optional[int] = shown(default=None, when="fd_limit")  # the listener's Recv-Q
    close_wait_after_hold: int = shown()  # server sockets in CLOSE_WAIT after ``hold`` seconds
    # no limit:
    close_wait_timer: Optional[str] = shown(default=None, unless="fd_limit")  # the kernel's timer on it
    client_states_after_hold: Optional[dict] = shown(default=None, unless="fd_limit")  # state -> count
    # what the server's recv() returned: "EOF" (b"")
    reads_after_fin: Optional[str] = shown(default=None, unless="fd_limit")
    # the server writes twice into a leaked connection
    write_into_leak: Optional[str] = shown(default=None, unless="fd_limit")
    socket_table: Optional[str] = None  # no limit: just after the clients closed
    socket_table_after_hold: str = shown()

    # Runs without a limit, or over IPv4, read as they did before the options existed.
    QUIET_OPTIONS = {"fd_limit": 0, "family": 4}


def _count(sockets, state, local_port=None) -> int:
    return sum(1 for s in sockets if s.state == state and (local_port is None or s.local[1] == local_port))


def body(
    lab,
    connections: int,
    hold: int,
    fin_timeout: int,
    server_closes: bool,
    fd_limit: int = 0,
    family: int = 4,
) -> dict:
    lab.use_family(family)
    if fd_limit:
        return _limited_server(lab, connections, hold, fin_timeout, server_closes, fd_limit)
    listener = lab.listener(SERVER_PORT)
    pairs = []
    for i in range(connections):
        pairs.append(lab.accepted(listener, FIRST_PORT + i))
    lab.step("the clients close")
    for client, _ in pairs:
        client.close()
    reads = set()
    for _, server in pairs:
        server.settimeout(5)
        data = server.recv(100)
        reads.add("EOF" if data == b"" else f"{len(data)} bytes")
        if server_closes:
            server.close()
    lab.wait_for(
        lambda: all(
            lab.state_of(FIRST_PORT + i, SERVER_PORT) in ("FIN_WAIT_2", "TIME_WAIT")
            for i in range(connections)
        ),
        "the clients' FINs to be acknowledged",
    )
    first = [s for s in lab.sockets([SERVER_PORT]) if s.state != "LISTEN"]
    close_wait = [s for s in first if s.state == "CLOSE_WAIT"]

    lab.step(f"waiting {hold} s")
    time.sleep(hold)
    later = [s for s in lab.sockets([SERVER_PORT]) if s.state != "LISTEN"]
    clients = {}
    for i in range(connections):
        state = lab.state_of(FIRST_PORT + i, SERVER_PORT)
        clients[state] = clients.get(state, 0) + 1

    write = "not tried (the server closed its sockets)"
    if not server_closes:
        lab.step("the server writes into a leaked connection")
        server = pairs[0][1]
        outcomes = []
        for _ in range(2):
            try:
                server.send(b"late reply\n")
                outcomes.append("sent")
            except OSError as exc:
                outcomes.append(errno_name(exc))
            time.sleep(0.2)
        write = ", then ".join(outcomes)
    return {
        "close_wait_at_start": _count(first, "CLOSE_WAIT", SERVER_PORT),
        "close_wait_after_hold": _count(later, "CLOSE_WAIT", SERVER_PORT),
        "close_wait_timer": close_wait[0].timer if close_wait else "",
        "client_states_after_hold": clients,
        "reads_after_fin": ", ".join(sorted(reads)),
        "write_into_leak": write,
        "socket_table": ss_text(first),
        "socket_table_after_hold": ss_text(later, timers=False),
    }


# --- the server in a process of its own, under a descriptor limit ------------------------
def _serve(listener: socket.socket, channel: socket.socket, fd_limit: int, server_closes: bool) -> None:
    """The forked server: it answers the body's commands, one line each, on ``channel``."""
    os.dup2(listener.fileno(), LISTENER_FD)
    os.dup2(channel.fileno(), CHANNEL_FD)
    os.closerange(CHANNEL_FD + 1, os.sysconf("SC_OPEN_MAX"))
    listener = socket.socket(fileno=LISTENER_FD)
    chan = socket.socket(fileno=CHANNEL_FD).makefile("rw")  # no new descriptor

    def tell(answer: dict) -> None:
        chan.write(json.dumps(answer) + "\n")
        chan.flush()

    listener.settimeout(5)
    descriptors = len(os.listdir("/proc/self/fd")) - 1  # less the one listdir() opened
    # Soft limit only, in this process only: the hard limit and every other process keep theirs.
    resource.setrlimit(resource.RLIMIT_NOFILE, (fd_limit, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    tell({"descriptors": descriptors})
    leaked = []  # the accepted sockets, kept open: the bug
    for line in chan:
        if line.strip() != "accept":
            break
        try:
            conn, _ = listener.accept()
        except OSError as exc:
            tell({"accept": errno_name(exc)})
            continue
        tell({"accept": "ok"})
        conn.settimeout(5)
        data = conn.recv(100)
        if server_closes:
            conn.close()
        else:
            leaked.append(conn)
        tell({"read": "EOF" if data == b"" else f"{len(data)} bytes"})


def _limited_server(
    lab, connections: int, hold: int, fin_timeout: int, server_closes: bool, fd_limit: int
) -> dict:
    listener = lab.listener(SERVER_PORT)
    ours, theirs = socket.socketpair()
    lab.step(f"forking a server process with RLIMIT_NOFILE {fd_limit}")
    pid = os.fork()
    if pid == 0:  # the server process: never returns into the body
        code = 0
        try:
            ours.close()
            _serve(listener, theirs, fd_limit, server_closes)
        except BaseException as exc:  # told to the body, which raises it
            code = 1
            os.write(CHANNEL_FD, (json.dumps({"error": f"{type(exc).__name__}: {exc}"}) + "\n").encode())
        finally:
            os._exit(code)
    try:
        theirs.close()
        ours.settimeout(10)
        chan = ours.makefile("rw")

        def reply(what: str) -> dict:
            line = chan.readline()
            if not line:
                raise RuntimeError(f"the server process exited while {what}")
            answer = json.loads(line)
            if "error" in answer:
                raise RuntimeError(f"the server process failed while {what}: {answer['error']}")
            return answer

        descriptors = reply("starting")["descriptors"]
        accepted, errors, connects, queued = 0, {}, {}, []
        for i in range(connections):
            try:
                client = lab.connect(SERVER_PORT, src_port=FIRST_PORT + i, timeout=2)
            except OSError as exc:  # a full accept queue: the SYN goes unanswered
                name = "timed out" if isinstance(exc, TimeoutError) else errno_name(exc)
                connects[name] = connects.get(name, 0) + 1
                break
            connects["connected"] = connects.get("connected", 0) + 1
            lab.step(f"the server accepts connection {i + 1}")
            chan.write("accept\n")
            chan.flush()
            outcome = reply("accepting")["accept"]
            if outcome != "ok":
                errors[outcome] = errors.get(outcome, 0) + 1
                queued.append(client)
                continue
            accepted += 1
            client.close()
            reply("reading end-of-file")
        lab.step(f"a client with a queued connection waits {hold} s for a reply")
        answer = "no queued connection"
        if queued:
            queued[0].sendall(b"request\n")
            queued[0].settimeout(hold)
            try:
                data = queued[0].recv(100)
                answer = "EOF" if data == b"" else f"{len(data)} bytes"
            except TimeoutError:
                answer = f"none within {hold} s"
            except OSError as exc:
                answer = errno_name(exc)
        # The table without the clients' orphans, whatever ``hold`` was: they last fin_timeout.
        lab.wait_for(
            lambda: all(lab.state_of(FIRST_PORT + i, SERVER_PORT) != "FIN_WAIT_2" for i in range(accepted)),
            "the clients' orphans to end",
            timeout=fin_timeout + 5,
        )
        table = lab.sockets([SERVER_PORT])
        listening = [s for s in table if s.state == "LISTEN"]
    finally:
        ours.close()
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    return {
        "server_descriptors": descriptors,
        "accepted": accepted,
        "accept_errors": errors,
        "client_connects": connects,
        "reply_to_queued_request": answer,
        "listen_queue": listening[0].recv_queue if listening else 0,
        "close_wait_after_hold": _count(table, "CLOSE_WAIT", SERVER_PORT),
        "socket_table_after_hold": ss_text(table, timers=False),
    }


register(
    Experiment(
        name="close-wait-leak",
        summary="A server that never closes: its sockets stay in CLOSE_WAIT, which has no timer.",
        params=(
            Param("connections", int, 3, "connections the client opens and closes", minimum=1, maximum=100),
            Param(
                "hold",
                int,
                3,
                "seconds to wait before looking again (with fd_limit: for a "
                "reply on a connection nobody accepted)",
                minimum=1,
                maximum=60,
            ),
            Param(
                "fin_timeout",
                int,
                1,
                "net.ipv4.tcp_fin_timeout (the clients' orphans)",
                minimum=1,
                maximum=60,
            ),
            Param("server_closes", bool, False, "the server closes on end-of-file (the fix)"),
            Param(
                "fd_limit",
                int,
                0,
                "soft RLIMIT_NOFILE of a server in a process of its own (0: no server process, no limit)",
                minimum=0,
                maximum=1024,
            ),
            Param("family", int, 4, "IP version: 4 (127.0.0.1) or 6 (::1)", choices=(4, 6)),
        ),
        body=f"{__name__}:body",
        result=CloseWaitLeakResult,
        sysctls=lambda p: {"net.ipv4.tcp_fin_timeout": p["fin_timeout"]},
        # with fd_limit: the clients' orphans to end, and one connect() timing out on a full queue
        timeout=lambda p: 20.0 + p["hold"] + (p["fin_timeout"] + 2 if p["fd_limit"] else 0),
        variants=(
            {},
            {"server_closes": True},
            {"connections": 5, "hold": 2, "fd_limit": 8},
            {"family": 6},
            {"connections": 5, "hold": 2, "fd_limit": 8, "family": 6},
        ),
    )
)
