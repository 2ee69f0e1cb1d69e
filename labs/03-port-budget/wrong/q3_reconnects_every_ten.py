"""Reuses a connection for ten messages, then opens a new one."""


def reusing_client(lab, server_port, messages):
    replies = []
    for start in range(0, len(messages), 10):
        with socket.create_connection(("127.0.0.1", server_port), timeout=5) as sock:
            replies += [ask(sock, m) for m in messages[start : start + 10]]
    return replies
