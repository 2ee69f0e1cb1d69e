"""Counts a request as completed before its connection is made, so the failed one counts too."""


def churning_client(lab, server_port, requests):
    completed = 0
    for i in range(requests):
        completed += 1
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.connect(("127.0.0.1", server_port))
        except OSError as exc:
            sock.close()
            return {"completed": completed, "error": errno.errorcode.get(exc.errno, str(exc.errno))}
        ask(sock, f"request {i}")
        sock.close()
    return {"completed": completed, "error": None}
