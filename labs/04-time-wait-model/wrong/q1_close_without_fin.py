"""Goes from CLOSE_WAIT to LAST_ACK without sending its own FIN."""

CLOSE_ROWS[(CLOSE_WAIT, APP_CLOSE)] = (LAST_ACK, ())
