"""close-wait-leak: a server that never closes the connections its clients have closed.

The client opens ``connections`` connections and closes each one. The server's application
reads end-of-file (recv() returns b"") but, unless ``server_closes`` is set, never calls
close(): each of its sockets stays in CLOSE_WAIT. CLOSE_WAIT has no timer in the kernel (the
timer column of /proc/net/tcp reads "off"), so nothing ends it but the application. The
clients' orphaned FIN_WAIT_2 sockets give up after ``tcp_fin_timeout``; after ``hold``
seconds the body looks again, and finally lets the server write into one leaked
connection, whose peer no longer knows it.
"""
from __future__ import annotations

import errno
import time
from dataclasses import dataclass, field

from ..observe import ss_text
from .base import Experiment, ExperimentResult, Param, register

SERVER_PORT = 5000
FIRST_PORT = 40000


@dataclass
class CloseWaitLeakResult(ExperimentResult):
    close_wait_at_start: int = 0  # server sockets in CLOSE_WAIT just after the clients closed
    close_wait_after_hold: int = 0  # ... after ``hold`` seconds
    close_wait_timer: str = ""  # the kernel's timer on a CLOSE_WAIT socket
    client_states_after_hold: dict = field(default_factory=dict)  # state -> count
    reads_after_fin: str = ""  # what the server's recv() returned: "EOF" (b"")
    write_into_leak: str = ""  # the server writes twice into a leaked connection
    socket_table: str = ""  # just after the clients closed
    socket_table_after_hold: str = ""

    SHOWN = ("close_wait_at_start", "close_wait_after_hold", "close_wait_timer",
             "client_states_after_hold", "reads_after_fin", "write_into_leak",
             "socket_table_after_hold")


def _count(sockets, state, local_port=None) -> int:
    return sum(1 for s in sockets if s.state == state
               and (local_port is None or s.local[1] == local_port))


def body(lab, connections: int, hold: int, fin_timeout: int, server_closes: bool) -> dict:
    listener = lab.listener(SERVER_PORT)
    pairs = []
    for i in range(connections):
        client = lab.connect(SERVER_PORT, src_port=FIRST_PORT + i)
        server, _ = listener.accept()
        lab.track(server)
        pairs.append((client, server))
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
    lab.wait_for(lambda: all(lab.state_of(FIRST_PORT + i, SERVER_PORT) in
                             ("FIN_WAIT_2", "TIME_WAIT") for i in range(connections)),
                 "the clients' FINs to be acknowledged")
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
                outcomes.append(errno.errorcode.get(exc.errno, str(exc.errno)))
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


register(Experiment(
    name="close-wait-leak",
    summary="A server that never closes: its sockets stay in CLOSE_WAIT, which has no timer.",
    params=(
        Param("connections", int, 3, "connections the client opens and closes", minimum=1,
              maximum=100),
        Param("hold", int, 3, "seconds to wait before looking again", minimum=1, maximum=60),
        Param("fin_timeout", int, 1, "net.ipv4.tcp_fin_timeout (the clients' orphans)",
              minimum=1, maximum=60),
        Param("server_closes", bool, False, "the server closes on end-of-file (the fix)"),
    ),
    body=f"{__name__}:body",
    result=CloseWaitLeakResult,
    sysctls=lambda p: {"net.ipv4.tcp_fin_timeout": p["fin_timeout"]},
    timeout=lambda p: 20.0 + p["hold"],
    variants=({}, {"server_closes": True}),
))
