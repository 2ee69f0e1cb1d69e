"""Small experiment bodies that exercise the engine itself (run inside the namespace)."""
import socket
import time

from timewait.faults import Match


def fails(lab):
    lab.step("dividing by zero")
    return {"x": 1 / 0}


def hangs(lab):
    lab.step("waiting for a peer that never comes")
    time.sleep(60)
    return {}


def read_sysctl(lab, name):
    return {"value": lab.sysctl(name)}


def _pair(lab):
    lab.start_capture()
    listener = lab.listener(5000)
    client = lab.connect(5000, src_port=40000)
    server, _ = listener.accept()
    lab.track(server)
    return client, server


def drop_first_data(lab):
    client, server = _pair(lab)
    rule = lab.drop(Match(src_port=40000, flags="PSH|ACK"), count=1)
    client.sendall(b"hello")
    server.settimeout(5)
    received = server.recv(100)
    lab.remove(rule)
    return {"dropped": rule.dropped, "received": received.decode(),
            "trace": lab.trace(40000, 5000).to_dicts()}


def hold_and_deliver(lab):
    client, server = _pair(lab)
    rule = lab.hold(Match(src_port=40000, flags="PSH|ACK"), count=1)
    client.sendall(b"hello")
    server.settimeout(5)
    server.recv(100)  # arrives by retransmission
    lab.remove(rule)
    held = lab.held(rule)
    acks_before = len([v for v in lab.segments() if v.src[1] == 5000])
    lab.deliver(held[0])
    lab.wait_for(lambda: len([v for v in lab.segments() if v.src[1] == 5000]) > acks_before,
                 "an answer to the late segment")
    trace = lab.trace(40000, 5000)
    return {"held": rule.dropped, "notes": [s.note for s in trace if s.note or s.src == "client"],
            "acked_again": trace[-1].src == "server" and trace[-1].flags == "ACK"}
