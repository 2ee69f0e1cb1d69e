"""Support for the port-budget lab: a line server in a private namespace with a small
ephemeral port range, a harness that runs a client written in the notebook against it,
and a time limit for checks.

The server answers each line with the same line in upper case, for as long as a client
keeps its connection open. The harness counts the connections it accepted and the
TIME_WAIT sockets left behind itself, so the checks do not depend on the client's word.
"""

from __future__ import annotations

import socket
import threading

import dill

from timewait.labkit import StudentCodeError, call_student, lab_tier, run_student, time_limit  # noqa: F401
from timewait.model.portbudget import port_budget

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
    result, crash = call_student(lab, client, lab, SERVER_PORT, *args["positional"])
    if crash:
        return {"student_error": crash}
    try:
        lab.wait_for(
            lambda: not any(s.state in CLOSING_STATES for s in lab.sockets([SERVER_PORT])),
            "the closes under way to finish",
            timeout=3,
        )
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
    sysctls = {"net.ipv4.ip_local_port_range": f"{port_range[0]} {port_range[1]}", "net.ipv4.tcp_tw_reuse": 0}
    try:
        return run_student(
            __file__,
            "harness",
            client,
            f"your {getattr(client, '__name__', 'client')}",
            sysctls=sysctls,
            timeout=timeout,
            args={"positional": list(positional)},
        )
    except StudentCodeError as exc:
        if "[Errno 99]" not in str(exc):
            raise
        raise StudentCodeError(
            f"{exc}\nThe namespace's {port_range[1] - port_range[0] + 1} ports were all in "
            f"TIME_WAIT: your client opened more connections than the range can give."
        ) from None


def _connections(n: int) -> str:
    return f"{n} connection{'' if n == 1 else 's'}"


def check_ceiling(ceiling_rate) -> None:
    """Question 1's visible check of ``ceiling_rate``, on Linux's default range."""
    with time_limit(5, "ceiling_rate"):
        got = ceiling_rate((32768, 60999), 60)
    right = port_budget(1, 60, (32768, 60999)).ceiling_rate
    number = isinstance(got, (int, float))
    assert number and abs(got - right) < 1e-6, (
        f"ceiling_rate((32768, 60999), 60) returned {got!r}. At the ceiling, new connections "
        f"take ports exactly as fast as TIME_WAIT gives them back; yours is "
        f"{'above' if number and got > right else 'below' if number else 'not'} that rate. "
        f"How many ports does the range hold, with both ends included?"
    )


def check_exhaustion(seconds_until_exhausted) -> None:
    """Question 1's visible check of ``seconds_until_exhausted``."""
    with time_limit(5, "seconds_until_exhausted"):
        fast = seconds_until_exhausted(1000, (32768, 60999), 60)
        slow = seconds_until_exhausted(100, (32768, 60999), 60)
    right = port_budget(1000, 60, (32768, 60999)).time_to_exhaustion
    assert fast is not None and abs(fast - right) < 1e-6, (
        f"At 1000 new connections per second the default range runs dry before the first "
        f"port comes back from TIME_WAIT; seconds_until_exhausted says {fast!r} s. Which "
        f"ports are free again before the first 60 s have passed?"
    )
    assert slow is None, (
        f"At 100 connections per second ports come back from TIME_WAIT faster than they are "
        f"used, so connect() never fails; seconds_until_exhausted says {slow!r}."
    )


def connect_budget(port_range) -> tuple:
    """How many connections to one server ``connect()`` can open from ``port_range`` before
    ``EADDRNOTAVAIL``: ``(fewest, most)``.

    ``__inet_hash_connect()`` (net/ipv4/inet_hashtables.c) rounds the number of ports it
    scans down to an even number and scans them in two passes of one parity each from a
    random offset, so in an odd-sized range one port (which one depends on the offset) is
    out of reach of a given connect(). An even-sized range is used to the last port; an odd
    one loses at most one. The course measures it for ranges of 1 to 12 ports (experiment
    ``ephemeral-range-sizes``, chapter "Ephemeral port exhaustion").
    """
    low, high = port_range
    size = high - low + 1
    if size == 1 or size % 2 == 0:
        return size, size
    return size - 1, size


def check_churn(run: dict, requests: int, port_range) -> None:
    """The checks of question 2: what the client reported against what the server and the
    kernel saw. Each failure says what was observed and what it means."""
    result = run["result"]
    accepted = run["connections_accepted"]
    assert isinstance(result, dict), (
        f"churning_client returned {result!r}; it should return a dict with the keys 'completed' and 'error'."
    )
    fewest, most = connect_budget(port_range)
    low, high = port_range
    size = high - low + 1
    if accepted < min(requests, fewest) and result.get("completed") != accepted:
        raise AssertionError(
            f"The server accepted {_connections(accepted)} for {requests} requests: the "
            f"churning client opens a new connection for each request and closes it after "
            f"the reply."
        )
    assert result.get("completed") == accepted, (
        f"Your report says {result.get('completed')!r} requests completed, but the server "
        f"accepted {_connections(accepted)}. Count a request only once its reply has arrived."
    )
    outside = [p for p in run["client_ports"] if not low <= p <= high]
    assert not outside, (
        f"The server saw connections from ports {outside}, outside the namespace's range "
        f"{low}-{high}: let the kernel pick the client's port (do not bind one yourself)."
    )
    if requests < fewest:
        assert accepted == requests and result.get("error") is None, (
            f"With {requests} requests and {size} ports no connect() should fail; the server "
            f"accepted {accepted} connections and your report is {result!r}."
        )
    else:
        assert fewest <= accepted <= most, (
            f"With {size} ports and every port held by TIME_WAIT after one connection, "
            f"connect() can open {fewest if fewest == most else f'{fewest} or {most}'} "
            f"connections to one server before it fails; the server accepted {accepted}. "
            + (
                "Did your client open a new connection for every request?"
                if accepted < fewest
                else "Did it stop at the first connect() that failed?"
            )
        )
        assert result.get("error") == "EADDRNOTAVAIL", (
            f"After {accepted} connections the next connect() fails; your report gives the error "
            f"as {result.get('error')!r}. Report the errno name, errno.errorcode[exc.errno]: "
            f"it is what 'Cannot assign requested address' is called."
        )
    assert run["time_wait_sockets"] == accepted, (
        f"After the run, {run['time_wait_sockets']} of the {accepted} client ports sit in "
        f"TIME_WAIT. The side that closes first keeps TIME_WAIT: did your client close each "
        f"connection itself once its reply arrived?"
    )


def check_reuse(run: dict, messages: list, ports: int) -> None:
    """The checks of question 3."""
    result, accepted = run["result"], run["connections_accepted"]
    want = [m.upper() for m in messages]
    assert isinstance(result, list), (
        f"reusing_client returned {type(result).__name__}; it should return the list of replies."
    )
    if result != want:
        wrong = next(
            (i for i, (a, b) in enumerate(zip(result, want, strict=False)) if a != b),
            min(len(result), len(want)),
        )
        got = result[wrong] if wrong < len(result) else "(nothing)"
        raise AssertionError(
            f"{len(messages)} messages got {len(result)} replies; the first one out of place is "
            f"reply {wrong}: {got!r} where the server answered {want[wrong]!r}. Send one line, "
            f"read its reply (ask() does both), then the next."
        )
    assert accepted <= 2, (
        f"The server accepted {_connections(accepted)} for {len(messages)} requests; the namespace "
        f"has {ports} ports, so a client that opens one per request runs out. Keep one "
        f"connection open and send every request on it."
    )
