"""Small bodies that exercise topologies (run inside an experiment's namespace)."""

import os
import time

from timewait.topology import routed


def one_connection(lab, family=4):
    """client -> router -> server, one connection closed by the client; what each host saw."""
    topo = lab.topology()
    net = routed(topo)
    cap = topo.capture("router", net.outside_iface)
    listener = topo.listener("server", net.server(family), 80)
    client = topo.connect("client", net.server(family), 80, src_port=40000)
    server, _ = listener.accept()
    client.sendall(b"x")
    server.recv(1)
    client.close()
    server.recv(1)
    server.close()
    lab.wait_for(
        lambda: [e for e in topo.conntrack("router") if e.state == "TIME_WAIT"],
        "the router's entry to reach TIME_WAIT",
    )
    time.sleep(0.2)  # the capture thread reads the last segments
    return {
        "pids": topo.processes(),
        "router_ns": os.readlink(f"/proc/{topo.host('router').pid}/ns/net"),
        "own_ns": os.readlink("/proc/self/ns/net"),
        "entries": [e.to_dict() for e in topo.conntrack("router")],
        "client_states": [s.state for s in topo.sockets("client", [80])],
        "links": sorted({f.link for f in cap.snapshot()}),
        "flags": [v.flags for v in cap.tcp()],
        "timeouts": topo.conntrack_timeouts("router"),
        "stats": topo.conntrack_stats("router"),
    }


def set_host_sysctl(lab, name, value):
    topo = lab.topology()
    topo.add_host("a")
    topo.sysctl("a", name, value)
    return {"inside": topo.sysctl("a", name), "outside": lab.sysctl(name)}


def hangs_with_a_topology(lab, pid_file):
    topo = lab.topology()
    routed(topo)
    with open(pid_file, "w") as fh:
        fh.write(" ".join(map(str, topo.processes())))
    lab.step("waiting forever with hosts up")
    time.sleep(60)
