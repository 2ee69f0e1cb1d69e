"""timeout-close: does a timeout send a connection straight to CLOSED, skipping TIME_WAIT?

A claim often repeated is that "if one side's send or recv times out, it goes directly to
CLOSED". Two different timers hide behind "timeout", and ``kind`` runs each:

- ``recv-timeout``: the client sets ``SO_RCVTIMEO`` (0.3 s) and calls recv() with nothing
  to read. The call fails with EAGAIN; nothing is sent, and the connection is still
  ESTABLISHED: a receive timeout is the application's timer, TCP does nothing. A reply sent
  afterwards is read, and after a normal close the client, which closed first, goes to
  TIME_WAIT as usual.
- ``user-timeout``: the client sets ``TCP_USER_TIMEOUT`` (1 s) and sends a request whose
  acknowledgements are all dropped (every segment from the server is). TCP retransmits (a
  tail loss probe, then timeout retransmissions) and, once the user timeout has passed since
  the first timeout retransmission (``retrans_stamp``), aborts: recv() fails with ETIMEDOUT and the socket is
  gone from the socket table at once, CLOSED without TIME_WAIT, having sent neither a FIN
  nor a RST (``tcp_write_err()`` in net/ipv4/tcp_timer.c; counted in TCPAbortOnTimeout).
  The server never hears of it: it is still ESTABLISHED, and when it next sends, the
  client's kernel, which has forgotten the connection, answers with a RST.
- ``close-timeout``: the same user timeout, but the client close()s and it is its FIN that
  is never acknowledged. The orphan in FIN_WAIT_1 retransmits its FIN and gives up the same
  way, to CLOSED without TIME_WAIT; the server, which did receive the FIN, sits in
  CLOSE_WAIT, and its own FIN is later answered with a RST.

The timings (the kernel's clock, loopback RTO about 200 ms) are kept in non-shown fields
and shown rounded. ``family=6`` runs it over IPv6, on ``::1``.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass
from typing import Optional

from ..faults import Match
from ..observe import COUNTERS, counter_delta, ss_text
from .base import Experiment, ExperimentResult, Param, register, shown
from .common import errno_name

SERVER_PORT = 5000
CLIENT_PORT = 40000
RCVTIMEO_S = 0.3
USER_TIMEOUT_MS = 1000
REQUEST = b"request\n"
LATE_REPLY = b"late reply\n"
KINDS = ("recv-timeout", "user-timeout", "close-timeout")


@dataclass(kw_only=True)
class TimeoutCloseResult(ExperimentResult):
    QUIET_OPTIONS = {"family": 4}  # an IPv4 run reads as before IPv6 was an option

    timer: str = shown()  # which timer ran out, and its value
    application_saw: str = shown()  # what the client's call returned
    wire_while_waiting: str = shown()  # what the client sent while its timer ran (from the capture)
    gave_up: str = shown()  # when TCP gave the connection up, counted as the kernel counts it
    state_after_timeout: str = shown()  # the client's socket, read just after the timer ran out
    peer_state_after_timeout: str = shown()  # the server's socket at that moment
    socket_table: str = shown()  # the socket table at that moment
    kernel_counters: dict = shown()  # TCPAbortOnTimeout, TCPLossProbes, TW
    afterwards: str = shown()  # what happened when the server next sent or closed
    end_states: dict = shown()  # once the run is over
    time_wait: str = shown()  # the client's TIME_WAIT socket, if one was ever seen
    # not shown: they vary from run to run
    error: Optional[str]  # errno name the client's call failed with
    waited_s: float  # from the call (or close) to the error (or the socket's end)
    # from the first timeout retransmission to the abort; None without one (recv-timeout)
    after_first_timeout_retransmission_s: Optional[float] = None
    client_segments_while_waiting: int
    client_fins_while_waiting: int
    client_rsts: int  # RSTs the client sent during the whole run
    counters: dict


def _about(seconds: float, step: float) -> str:
    return f"about {round(seconds / step) * step:g} s"


def _client_segments(lab, start: float, end: float) -> list:
    return [v for v in lab.segments(start, end) if v.src[1] == CLIENT_PORT]


def _gave_up(sent: list, end: float) -> tuple:
    """The abort, timed from the first timeout retransmission (the third transmission: the
    first retransmission is a tail loss probe), where the kernel's clock for the user
    timeout starts (``retrans_stamp`` in retransmits_timed_out())."""
    if len(sent) < 3:
        return f"after {len(sent)} transmissions", None
    after = end - sent[2].t
    return f"{_about(after, 0.5)} after the first timeout retransmission", round(after, 3)


def _watch_for_time_wait(lab, seconds: float) -> Optional[str]:
    """Poll the client's socket for ``seconds``; its TIME_WAIT row as text if one appears."""
    deadline = lab.now() + seconds
    while lab.now() < deadline:
        rows = [s for s in lab.sockets([CLIENT_PORT]) if s.local[1] == CLIENT_PORT and s.state == "TIME_WAIT"]
        if rows:
            return f"client, {round(rows[0].expires_s)} s timer"
        time.sleep(0.01)
    return None


def _while_waiting(
    error,
    start: float,
    end: float,
    after: list,
    state: str,
    peer_state: str,
    sent: list,
    time_wait: Optional[str],
) -> dict:
    """The fields every kind reports about the wait and what followed it."""
    return {
        "error": error,
        "waited_s": round(end - start, 3),
        "sockets_after": after,
        "state_after_timeout": state,
        "peer_state_after_timeout": peer_state,
        "client_segments_while_waiting": len(sent),
        "client_fins_while_waiting": sum("FIN" in v.flags for v in sent),
        "time_wait": time_wait,
    }


def _recv_until_error(lab, client) -> tuple:
    """Wait in ``recv()`` until it fails: ``(errno name or None, end time, the server's socket
    table, the client's state, the server's state)`` read at once afterwards."""
    try:
        client.recv(100)
        error = None
    except OSError as exc:
        error = errno_name(exc)
    end = lab.now()
    after = lab.sockets([SERVER_PORT])
    return (error, end, after, lab.state_of(CLIENT_PORT, SERVER_PORT), lab.state_of(SERVER_PORT, CLIENT_PORT))


def _recv_timeout(lab, client, server) -> dict:
    # A blocking socket, so that the kernel's SO_RCVTIMEO times the call, not Python's poll().
    client.settimeout(None)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, int(RCVTIMEO_S * 1e6)))
    lab.step("the client waits in recv() with nothing to read")
    start = lab.now()
    error, end, after, state, peer_state = _recv_until_error(lab, client)
    sent = _client_segments(lab, start, end)

    lab.step("the server replies late; then both close")
    server.sendall(LATE_REPLY)
    got = client.recv(100)
    client.close()
    server.settimeout(5)
    assert server.recv(100) == b""
    server.close()
    time_wait = _watch_for_time_wait(lab, 2.0)
    return {
        "timer": f"SO_RCVTIMEO = {RCVTIMEO_S:g} s",
        "application_saw": f"recv() failed with {error} after {_about(end - start, 0.1)}",
        "wire_while_waiting": f"nothing: {len(sent)} segments",
        "gave_up": "no: nothing was outstanding",
        "afterwards": f"the server sent {len(LATE_REPLY)} bytes and the client read "
        f"{len(got)}; then the client closed first, the server second",
        **_while_waiting(error, start, end, after, state, peer_state, sent, time_wait),
    }


def _user_timeout(lab, client, server) -> dict:
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, USER_TIMEOUT_MS)
    rule = lab.drop(Match(src_port=SERVER_PORT, dst_port=CLIENT_PORT))
    lab.step("the client sends a request none of whose ACKs arrive")
    start = lab.now()
    client.sendall(REQUEST)
    client.settimeout(10)  # Python's bound on the wait: far beyond the user timeout
    error, end, after, state, peer_state = _recv_until_error(lab, client)
    time_wait = _watch_for_time_wait(lab, 0.5)
    sent = _client_segments(lab, start, end)

    lab.remove(rule)
    lab.step("the server, which never heard of it, reads the request and replies")
    server.settimeout(2)
    request = server.recv(100)
    next_sent = lab.now()
    server.sendall(LATE_REPLY)
    answer = lab.wait_for_segment(Match(src_port=CLIENT_PORT), "the client's answer", after=next_sent)
    try:
        server.recv(100)
        peer_error = "nothing"
    except OSError as exc:
        peer_error = errno_name(exc)
    requests = [v for v in sent if v.length]
    gave_up, after_rto = _gave_up(requests, end)
    return {
        "timer": f"TCP_USER_TIMEOUT = {USER_TIMEOUT_MS / 1000:g} s",
        "application_saw": f"recv() failed with {error}",
        "wire_while_waiting": f"the request, sent {len(requests)} times; "
        + (
            "no FIN, no RST"
            if not any("FIN" in v.flags or "RST" in v.flags for v in sent)
            else "FIN or RST sent"
        ),
        "gave_up": gave_up,
        "after_first_timeout_retransmission_s": after_rto,
        "afterwards": f"the server read the {len(request)}-byte request and replied; the "
        f"client answered {answer.flags}; the server's next recv() failed with "
        f"{peer_error}",
        **_while_waiting(error, start, end, after, state, peer_state, sent, time_wait),
    }


def _close_timeout(lab, client, server) -> dict:
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, USER_TIMEOUT_MS)
    rule = lab.drop(Match(src_port=SERVER_PORT, dst_port=CLIENT_PORT))
    lab.step("the client closes; no ACK of its FIN arrives")
    start = lab.now()
    client.close()
    returned = lab.now() - start
    states, time_wait = [], None
    deadline = start + 10
    while lab.now() < deadline:
        rows = [s for s in lab.sockets([CLIENT_PORT]) if s.local[1] == CLIENT_PORT]
        now_state = rows[0].state if rows else "CLOSED"
        if rows and now_state == "TIME_WAIT":
            time_wait = f"client, {round(rows[0].expires_s)} s timer"
        if not states or states[-1] != now_state:
            states.append(now_state)
        if now_state == "CLOSED":
            break
        time.sleep(0.005)
    end = lab.now()
    after = lab.sockets([SERVER_PORT])
    peer_state = lab.state_of(SERVER_PORT, CLIENT_PORT)
    time_wait = time_wait or _watch_for_time_wait(lab, 0.5)
    sent = _client_segments(lab, start, end)

    lab.remove(rule)
    lab.step("the server, in CLOSE_WAIT, closes")
    closed_at = lab.now()
    server.close()
    answer = lab.wait_for_segment(Match(src_port=CLIENT_PORT), "the client's answer", after=closed_at)
    fins = [v for v in sent if "FIN" in v.flags]
    gave_up, after_rto = _gave_up(fins, end)
    return {
        "timer": f"TCP_USER_TIMEOUT = {USER_TIMEOUT_MS / 1000:g} s",
        "application_saw": "close() returned at once"
        if returned < 0.1
        else f"close() returned after {returned:.1f} s",
        "wire_while_waiting": f"the FIN, sent {len(fins)} times; "
        + ("no RST" if not any("RST" in v.flags for v in sent) else "a RST"),
        "gave_up": gave_up,
        "after_first_timeout_retransmission_s": after_rto,
        "afterwards": f"the server closed; its FIN was answered with {answer.flags}",
        **_while_waiting(None, start, end, after, " -> ".join(states), peer_state, sent, time_wait),
    }


def body(lab, kind: str, family: int = 4) -> dict:
    lab.use_family(family)
    lab.start_capture()
    client, server = lab.connection(SERVER_PORT, CLIENT_PORT)
    lab.segments()  # load the packet parser now, not while the timer runs
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    before = lab.counters()
    out = {"recv-timeout": _recv_timeout, "user-timeout": _user_timeout, "close-timeout": _close_timeout}[
        kind
    ](lab, client, server)
    time.sleep(0.1)
    lab.settle(quiet=0.1, timeout=1.0)
    delta = counter_delta(before, lab.counters(), COUNTERS + ("TCPLossProbes",))
    after = out.pop("sockets_after")
    trace = lab.trace(CLIENT_PORT, SERVER_PORT)
    out.update(
        trace=trace.to_dicts(),
        socket_table=ss_text(after, timers=False) if after else "(no sockets)",
        kernel_counters={n: delta.get(n, 0) for n in ("TCPAbortOnTimeout", "TCPLossProbes", "TW")},
        end_states={
            "client": lab.state_of(CLIENT_PORT, SERVER_PORT),
            "server": lab.state_of(SERVER_PORT, CLIENT_PORT),
        },
        time_wait=out["time_wait"] or "none",
        client_rsts=sum(1 for s in trace if s.src == "client" and s.has("RST")),
        counters=delta,
    )
    return out


register(
    Experiment(
        name="timeout-close",
        captures=True,
        summary="A receive timeout leaves the connection open; a TCP timeout aborts it to CLOSED, "
        "with no TIME_WAIT.",
        params=(
            Param("kind", str, "recv-timeout", "which timeout runs out", choices=KINDS),
            Param("family", int, 4, "IP version: 4 (127.0.0.1) or 6 (::1)", choices=(4, 6)),
        ),
        body=f"{__name__}:body",
        result=TimeoutCloseResult,
        timeout=lambda p: 20.0,
        variants=(*({"kind": k} for k in KINDS), {"kind": "user-timeout", "family": 6}),
    )
)
