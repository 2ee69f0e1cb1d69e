"""Answers a retransmitted FIN in TIME_WAIT but does not restart the 2 MSL timer."""

CLOSE_ROWS[(TIME_WAIT, RCV_FIN)] = (TIME_WAIT, (SEND_ACK,))
