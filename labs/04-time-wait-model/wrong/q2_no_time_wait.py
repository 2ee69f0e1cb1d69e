"""Forgets the connection as soon as the peer's FIN is acknowledged: no TIME_WAIT."""

CLOSE_ROWS[(FIN_WAIT_2, RCV_FIN)] = (CLOSED, (SEND_ACK, DELETE_TCB))
