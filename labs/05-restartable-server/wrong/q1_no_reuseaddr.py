"""Opens an ordinary listener: bind() fails with EADDRINUSE while its old connection is in TIME_WAIT."""


def open_listener(port):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", port))
    listener.listen(64)
    return listener
