"""Still opens a connection per message: runs out of ports long before the load ends."""


def reusing_client(lab, server_port, messages):
    replies = []
    for message in messages:
        with socket.create_connection(("127.0.0.1", server_port), timeout=5) as sock:
            replies.append(ask(sock, message))
    return replies
