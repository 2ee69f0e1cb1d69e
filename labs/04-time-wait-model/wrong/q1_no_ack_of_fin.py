"""Moves to CLOSE_WAIT on the peer's FIN without acknowledging it."""

CLOSE_ROWS[(ESTABLISHED, RCV_FIN)] = (CLOSE_WAIT, ())
