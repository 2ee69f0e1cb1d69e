"""Skips TIME_WAIT with a zero linger timeout: the client gets a reset."""


def finish(conn):
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()
