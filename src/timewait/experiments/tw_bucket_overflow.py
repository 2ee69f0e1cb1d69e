"""tw-bucket-overflow: what Linux does when tcp_max_tw_buckets TIME_WAIT sockets exist.

The namespace's ``net.ipv4.tcp_max_tw_buckets`` is set to ``max_tw_buckets``; the client then
opens and closes ``max_tw_buckets + extra`` connections, closing first each time, from ports
40000, 40001, ... When the table is full, ``tcp_time_wait()`` cannot allocate a timewait
socket: it counts TCPTimeWaitOverflow and closes the connection outright, so it skips
TIME_WAIT (net/ipv4/tcp_minisocks.c). The body then tries to bind and connect again from the
first port (still in TIME_WAIT) and from the first port that skipped it. ``family=6`` runs it
on ``::1``. ``fill_family`` makes the first ``max_tw_buckets`` connections, those that fill the
table, of another IP version than the ``extra`` ones after them: IPv4 and IPv6 closes go through
the same ``tcp_time_wait()`` and the namespace's one ``tcp_death_row``, so they count against
one ``tcp_max_tw_buckets``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

from ..observe import counter_delta, ss_text
from .base import Experiment, ExperimentResult, Param, register, shown
from .common import errno_name

SERVER_PORT = 5000
FIRST_PORT = 40000
COUNTERS = ("TW", "TCPTimeWaitOverflow")


@dataclass(kw_only=True)
class TimeWaitOverflowResult(ExperimentResult):
    QUIET_OPTIONS = {"family": 4, "fill_family": None}  # an IPv4 run reads as before IPv6 was an option

    connections: int = shown()  # closed by the client first
    time_wait: int = shown()  # client sockets in TIME_WAIT afterwards
    skipped: int = shown()  # client sockets that closed without TIME_WAIT
    client_states: dict = shown()  # state -> how many client ports
    counters: dict = shown()  # TcpExt counters that moved
    reconnect_waiting_port: Optional[str] = shown()  # bind+connect from a TIME_WAIT port
    reconnect_skipped_port: Optional[str] = shown()  # ... from a port that skipped TIME_WAIT
    socket_table: str = shown()
    client_addresses: list  # the client's address of each connection, in order


def _reconnect(lab, family: int, port: int, listener) -> str:
    _use(lab, family)
    s = lab.new_socket()
    try:
        s.settimeout(5)
        s.bind((lab.address, port))
        s.connect((lab.address, SERVER_PORT))
        listener.accept()[0].close()
        return "connected"
    except OSError as exc:
        return errno_name(exc)
    finally:
        s.close()


def _use(lab, family: int) -> None:
    if lab.family != family:
        lab.use_family(family)


def body(lab, max_tw_buckets: int, extra: int, family: int = 4, fill_family: Optional[int] = None) -> dict:
    fill = family if fill_family is None else fill_family
    listeners = {}
    for version in dict.fromkeys((fill, family)):  # on 127.0.0.1 and ::1 port 5000 if both
        _use(lab, version)
        listeners[version] = lab.listener(SERVER_PORT, backlog=64)
    total = max_tw_buckets + extra
    before = lab.counters()
    lab.step(f"closing {total} connections client first")
    addresses = []
    for i in range(total):
        version = fill if i < max_tw_buckets else family
        _use(lab, version)
        client, server = lab.accepted(listeners[version], FIRST_PORT + i)
        addresses.append(client.getsockname()[0])
        client.close()
        server.settimeout(5)
        assert server.recv(1) == b""  # the client's FIN
        server.close()
        port = FIRST_PORT + i
        lab.wait_for(
            lambda port=port: (
                lab.state_of(port, SERVER_PORT) in ("TIME_WAIT", "CLOSED")
                and lab.state_of(SERVER_PORT, port) == "CLOSED"
            ),
            f"connection {i + 1} to finish closing",
        )
    time.sleep(0.05)
    delta = counter_delta(before, lab.counters(), COUNTERS)
    states = {}
    for i in range(total):
        state = lab.state_of(FIRST_PORT + i, SERVER_PORT)
        states[state] = states.get(state, 0) + 1
    table = [s for s in lab.sockets([SERVER_PORT]) if s.state != "LISTEN"]
    first_skipped = next(
        (i for i in range(total) if lab.state_of(FIRST_PORT + i, SERVER_PORT) == "CLOSED"), None
    )
    waiting = _reconnect(lab, fill, FIRST_PORT, listeners[fill])
    skipped = None
    if first_skipped is not None:
        version = fill if first_skipped < max_tw_buckets else family
        skipped = _reconnect(lab, version, FIRST_PORT + first_skipped, listeners[version])
    return {
        "connections": total,
        "time_wait": states.get("TIME_WAIT", 0),
        "skipped": states.get("CLOSED", 0),
        "client_states": states,
        "counters": delta,
        "reconnect_waiting_port": waiting,
        "reconnect_skipped_port": skipped,
        "socket_table": ss_text(table, timers=False),
        "client_addresses": addresses,
    }


register(
    Experiment(
        name="tw-bucket-overflow",
        summary="Fill tcp_max_tw_buckets: further closes skip TIME_WAIT and count TCPTimeWaitOverflow.",
        params=(
            Param(
                "max_tw_buckets",
                int,
                5,
                "net.ipv4.tcp_max_tw_buckets inside the namespace",
                minimum=1,
                maximum=1000,
            ),
            Param("extra", int, 3, "connections closed after the table is full", minimum=1, maximum=1000),
            Param("family", int, 4, "IP version: 4 (127.0.0.1) or 6 (::1)", choices=(4, 6)),
            Param(
                "fill_family",
                int,
                None,
                "IP version of the connections that fill the table; None: family",
                choices=(None, 4, 6),
            ),
        ),
        body=f"{__name__}:body",
        result=TimeWaitOverflowResult,
        sysctls=lambda p: {"net.ipv4.tcp_max_tw_buckets": p["max_tw_buckets"]},
        timeout=lambda p: 20.0 + (p["max_tw_buckets"] + p["extra"]) * 0.05,
        variants=(
            {"max_tw_buckets": 5, "extra": 3},
            {"max_tw_buckets": 5, "extra": 3, "family": 6},
            {"max_tw_buckets": 5, "extra": 3, "family": 6, "fill_family": 4},
        ),
    )
)
