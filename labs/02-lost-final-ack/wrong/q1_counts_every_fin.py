"""Counts the server's first FIN as a retransmission (the reference experiment, reported
one too high)."""

_reference = lost_final_ack


def lost_final_ack(lab, time_wait, client_port=40000, server_port=5000):
    report = _reference(lab, time_wait, client_port, server_port)
    return {**report, "fin_retransmissions": report["fin_retransmissions"] + 1}
