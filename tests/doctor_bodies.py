"""A steady loopback load inside the namespace, with `timewait doctor` run beside it."""

import socket
import threading
import time

from timewait import doctor


def _serve(listener, stop):
    listener.settimeout(0.2)
    while not stop.is_set():
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        conn.close()  # the server closes first: TIME_WAIT sits on its port


def _clients(port, rate, stop, opened):
    """At most ``rate`` connections/s; after a stall (a busy machine) it goes on at the same
    pace rather than catching up in a burst, which would look like a load that has just grown."""
    period = 1.0 / rate
    next_at = time.monotonic()
    while not stop.is_set():
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.recv(1)  # the server's FIN
        opened.append(time.monotonic())
        next_at = max(next_at + period, time.monotonic())
        time.sleep(max(next_at - time.monotonic(), 0))


def load_then_doctor(lab, rate, start_after, interval):
    """Connections at ``rate``/s to 127.0.0.1:5000, the server closing first; after
    ``start_after`` s, ``doctor --interval`` runs while the load goes on."""
    listener = lab.listener(5000, backlog=512)
    stop, opened = threading.Event(), []
    threads = [
        threading.Thread(target=_serve, args=(listener, stop), daemon=True),
        threading.Thread(target=_clients, args=(5000, rate, stop, opened), daemon=True),
    ]
    before = doctor.read_rate_counters()
    lab.step("load running")
    for t in threads:
        t.start()
    time.sleep(start_after)
    lab.step("doctor --interval")
    examined_from = time.monotonic()
    report = doctor.examine("/proc", interval=interval)
    examined_to = time.monotonic()
    stop.set()
    for t in threads:
        t.join(timeout=10)
    after = doctor.read_rate_counters()
    return {
        "report": report.to_json(),
        "text": report.text(),
        "opened": len(opened),
        # connections in the minute before the report, and while it measured its rates
        "opened_last_minute": sum(1 for t in opened if examined_to - 60 <= t <= examined_to),
        "opened_while_measured": sum(1 for t in opened if examined_from <= t <= examined_to),
        "measured_s": examined_to - examined_from,
        "counters_before": before,
        "counters_after": after,
    }


def nat_then_doctor(lab, closed, kept_open):
    """The course's routed topology with masquerade on the router: ``closed`` connections
    from the client to the server's port 80, each closed by the client (the router's entry
    goes to conntrack's TIME_WAIT), and ``kept_open`` more left open; then `timewait doctor
    --json` runs as a command on the router, and the router's table is read beside it."""
    import json
    import sys

    from timewait.topology import routed

    topo = lab.topology()
    net = routed(topo)
    topo.masquerade("router", net.outside_iface)
    listener = topo.listener("server", net.server(), 80, backlog=64)
    listener.settimeout(5)
    held = []
    for i in range(closed + kept_open):
        client = topo.connect("client", net.server(), 80)
        server, _ = listener.accept()
        client.sendall(b"ping")
        assert server.recv(4) == b"ping"
        if i < closed:
            client.close()
            server.settimeout(5)
            assert server.recv(1) == b""
            server.close()
        else:
            held.append((client, server))

    def closed_entries():
        return sum(1 for e in topo.conntrack("router") if e.state == "TIME_WAIT")

    lab.wait_for(lambda: closed_entries() == closed, "the router's closed entries to reach TIME_WAIT")
    lab.step("doctor on the router")
    proc = topo.run("router", [sys.executable, "-m", "timewait.cli", "doctor", "--json"], timeout=30)
    text = topo.run("router", [sys.executable, "-m", "timewait.cli", "doctor"], timeout=30).stdout
    table = topo.conntrack("router")
    return {
        "report": json.loads(proc.stdout),
        "text": text,
        "entries": [e.to_dict() for e in table],
        "count": int(topo.sysctl("router", "net.netfilter.nf_conntrack_count")),
        "max": int(topo.sysctl("router", "net.netfilter.nf_conntrack_max")),
        "time_wait_timeout": int(topo.sysctl("router", "net.netfilter.nf_conntrack_tcp_timeout_time_wait")),
        "client": net.client(),
        "server": net.server(),
        "router_outside": net.router_outside[0],
    }
