"""Reads each address word as if it were printed in network byte order."""


def parse_address(field):
    host, port = field.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw), int(port, 16)
    return str(ipaddress.IPv6Address(raw)), int(port, 16)
