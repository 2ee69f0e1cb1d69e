"""Reports an IPv4-mapped address as IPv6 (::ffff:a.b.c.d), not as the IPv4 address it is."""


def parse_address(field):
    host, port = field.split(":")
    words = [int(host[i : i + 8], 16) for i in range(0, len(host), 8)]
    raw = b"".join(struct.pack("<I", w) for w in words)
    family = socket.AF_INET if len(raw) == 4 else socket.AF_INET6
    return socket.inet_ntop(family, raw), int(port, 16)
