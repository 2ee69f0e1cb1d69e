"""Ignores time_wait=False: the client keeps its TIME_WAIT."""

_reference = lost_final_ack


def lost_final_ack(lab, time_wait, client_port=40000, server_port=5000):
    return _reference(lab, True, client_port, server_port)
