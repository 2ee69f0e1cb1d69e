"""Sends its FIN but closes without draining what the client sent."""


def finish(conn):
    conn.shutdown(socket.SHUT_WR)
    conn.close()
