"""Closes at once: with request bytes still unread, close() resets the connection."""


def finish(conn):
    conn.close()
