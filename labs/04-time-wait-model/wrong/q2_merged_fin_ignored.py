"""Treats a FIN that also acknowledges ours as a FIN alone: waits in CLOSING for an ACK that
already came."""

CLOSE_ROWS[(FIN_WAIT_1, RCV_FIN_ACK_OF_FIN)] = (CLOSING, (SEND_ACK,))
