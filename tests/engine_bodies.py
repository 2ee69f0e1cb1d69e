"""Small experiment bodies that exercise the engine itself (run inside the namespace)."""

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


def _pair(lab, family=4):
    lab.use_family(family)
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
    return {
        "dropped": rule.dropped,
        "received": received.decode(),
        "trace": lab.trace(40000, 5000).to_dicts(),
    }


def hold_and_deliver(lab, family=4):
    """Hold the first data segment, then deliver it well before the sender's retransmission
    timer (at least 200 ms) fires: the receiver's application reads it from our copy."""
    client, server = _pair(lab, family)
    rule = lab.hold(Match(src_port=40000, flags="PSH|ACK"), count=1)
    client.sendall(b"hello")
    view = lab.wait_for_segment(Match(src_port=40000, flags="PSH|ACK"), "the held segment")
    lab.remove(rule)
    lab.deliver(view)
    server.settimeout(5)
    received = server.recv(100)
    lab.wait_for_segment(Match(src_port=5000, flags="ACK"), "the ACK of the delivered copy", after=view.t)
    trace = lab.trace(40000, 5000)
    data = [(s.flags, s.note) for s in trace if s.length]
    copy = next(v for v in lab.segments(start=view.t) if v.t > view.t and v.src[1] == 40000 and v.length)
    # The IP header as captured: Ethernet type and the header up to the TCP header.
    header = len(view.frame.data) - len(_tcp(view.frame.data))
    return {
        "held": rule.dropped,
        "received": received.decode(),
        "data_segments": data,
        "addresses": sorted({s.saddr for s in trace} | {s.daddr for s in trace}),
        "ethertypes": sorted({v.frame.data[12:14].hex() for v in lab.segments()}),
        "same_ip_header": copy.frame.data[12:header] == view.frame.data[12:header],
    }


def _tcp(frame):
    from timewait.lab import _tcp_bytes

    return _tcp_bytes(frame)


def orphan_left_behind(lab):
    """An orphan in LAST_ACK whose FIN is never acknowledged, then the teardown's clean-up."""
    client, server = lab.connection(5000, 40000)
    client.close()
    server.settimeout(5)
    server.recv(1)
    lab.drop(Match(src_port=40000, dst_port=5000, flags="ACK"))
    server.close()
    lab.wait_for(lambda: lab.state_of(5000, 40000) == "LAST_ACK", "the server in LAST_ACK")
    before = sorted(s.state for s in lab.sockets([5000, 40000]))
    lab._destroy_leftover_sockets()
    return {"before": before, "after": sorted(s.state for s in lab.sockets([5000, 40000]))}


def counts_attempts(lab, path):
    """Appends a line to ``path`` (the namespace shares the file system) and returns how many
    lines it holds: which attempt this is."""
    with open(path, "a") as fh:
        fh.write("run\n")
    with open(path) as fh:
        return {"attempt": len(fh.read().splitlines())}
