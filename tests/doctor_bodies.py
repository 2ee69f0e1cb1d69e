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
    period = 1.0 / rate
    next_at = time.monotonic()
    while not stop.is_set():
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.recv(1)  # the server's FIN
        opened.append(1)
        next_at += period
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
    report = doctor.examine("/proc", interval=interval)
    stop.set()
    for t in threads:
        t.join(timeout=10)
    after = doctor.read_rate_counters()
    return {
        "report": report.to_json(),
        "text": report.text(),
        "opened": len(opened),
        "counters_before": before,
        "counters_after": after,
    }
