"""Leaves room for one TIME_WAIT socket, which is all this experiment needs."""

_reference = lost_final_ack


def lost_final_ack(lab, time_wait, client_port=40000, server_port=5000):
    if not time_wait:
        lab.sysctl("net.ipv4.tcp_max_tw_buckets", 1)
    return _reference(lab, True, client_port, server_port)
