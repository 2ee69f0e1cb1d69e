"""Reports the error as the exception's text instead of its errno name."""


def churning_client(lab, server_port, requests):
    completed = 0
    for i in range(requests):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.connect(("127.0.0.1", server_port))
        except OSError as exc:
            sock.close()
            return {"completed": completed, "error": exc.strerror}
        ask(sock, f"request {i}")
        sock.close()
        completed += 1
    return {"completed": completed, "error": None}
