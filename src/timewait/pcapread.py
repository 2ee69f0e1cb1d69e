"""Read TCP segments from a pcap or pcapng file, one at a time.

dpkt reads the file's records (pcap and pcapng, any timestamp resolution) and yields each
frame's time and bytes; the link, IP and TCP headers the course needs are then unpacked with
:mod:`struct`, at fixed offsets, instead of building an object per header. Nothing is kept
between frames, so memory stays flat however large the file
(``benchmarks/bench_analyze.py`` measures the speed and memory against scapy).

Link types: Ethernet (with 802.1Q tags), Linux cooked capture v1 and v2 (``tcpdump -i any``),
raw IP, and BSD loopback. IPv4 and IPv6 (extension headers are walked).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import NamedTuple, Optional

FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80
FLAG_NAMES = ((SYN, "SYN"), (FIN, "FIN"), (RST, "RST"), (PSH, "PSH"), (ACK, "ACK"))

LINK_NULL, LINK_ETHERNET, LINK_RAW, LINK_LOOP, LINK_SLL, LINK_SLL2 = 0, 1, 101, 108, 113, 276
LINK_RAW_ALIASES = (12, 14, 228, 229)  # DLT_RAW on some systems, LINKTYPE_IPV4, LINKTYPE_IPV6
ETH_IPV4, ETH_IPV6, ETH_VLAN, ETH_QINQ = 0x0800, 0x86DD, 0x8100, 0x88A8
IPV6_EXTENSIONS = (0, 43, 60)  # hop-by-hop, routing, destination options

_IPV4 = struct.Struct("!BxHHHBB2x4s4s")
_IPV6 = struct.Struct("!4xHBx16s16s")
_TCP = struct.Struct("!HHIIBBH")
_TS = struct.Struct("!II")
_NOP_NOP_TS = b"\x01\x01\x08\x0a"
_PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
_PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"


class Packet(NamedTuple):
    """One TCP segment: addresses as text, flags as the TCP header's bit field."""

    t: float
    src: str
    sport: int
    dst: str
    dport: int
    seq: int
    ack: int
    flags: int
    length: int  # payload bytes, from the IP length (a short snaplen does not change it)
    window: int
    tsval: Optional[int]
    tsecr: Optional[int]

    def flag_text(self) -> str:
        """``"FIN|ACK"``, in the order :func:`timewait.trace.flags_text` uses."""
        return "|".join(name for bit, name in FLAG_NAMES if self.flags & bit)


def _address(raw: bytes) -> str:
    if len(raw) == 4:
        return ".".join(str(b) for b in raw)
    import ipaddress

    return str(ipaddress.IPv6Address(raw))


def _timestamps(options: bytes):
    """(tsval, tsecr) from TCP options, or (None, None)."""
    if options[:4] == _NOP_NOP_TS and len(options) >= 12:
        return _TS.unpack_from(options, 4)
    i, n = 0, len(options)
    while i < n:
        kind = options[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= n:
            break
        size = options[i + 1]
        if kind == 8 and size == 10 and i + 10 <= n:
            return _TS.unpack_from(options, i + 2)
        if size < 2:
            break
        i += size
    return None, None


def _ip_offset(linktype: int, frame: bytes) -> Optional[int]:
    """Where the IP header starts in a frame of this link type; None when it is not IP."""
    if linktype == LINK_ETHERNET:
        off, ethertype = 14, frame[12] << 8 | frame[13]
        while ethertype in (ETH_VLAN, ETH_QINQ) and len(frame) >= off + 4:
            ethertype = frame[off + 2] << 8 | frame[off + 3]
            off += 4
        return off if ethertype in (ETH_IPV4, ETH_IPV6) else None
    if linktype == LINK_SLL:
        return 16 if (frame[14] << 8 | frame[15]) in (ETH_IPV4, ETH_IPV6) else None
    if linktype == LINK_SLL2:
        return 20 if (frame[0] << 8 | frame[1]) in (ETH_IPV4, ETH_IPV6) else None
    if linktype in (LINK_NULL, LINK_LOOP):
        return 4
    if linktype == LINK_RAW or linktype in LINK_RAW_ALIASES:
        return 0
    raise ValueError(
        f"capture: link type {linktype} is not supported; supported: Ethernet (1), "
        "Linux cooked v1 (113) and v2 (276), raw IP (101), loopback (0, 108)"
    )


def parse_frame(t: float, frame: bytes, linktype: int) -> Optional[Packet]:
    """The TCP segment in one captured frame, or None (not TCP, a fragment, truncated)."""
    try:
        off = _ip_offset(linktype, frame)
        if off is None:
            return None
        version = frame[off] >> 4
        if version == 4:
            vihl, total, _ident, frag, _ttl, proto, src, dst = _IPV4.unpack_from(frame, off)
            if proto != 6 or frag & 0x1FFF:
                return None
            ihl = (vihl & 0x0F) * 4
            tcp_off, ip_payload = off + ihl, total - ihl
        elif version == 6:
            plen, proto, src, dst = _IPV6.unpack_from(frame, off)
            tcp_off, ip_payload = off + 40, plen
            while proto in IPV6_EXTENSIONS:
                proto, size = frame[tcp_off], (frame[tcp_off + 1] + 1) * 8
                tcp_off += size
                ip_payload -= size
            if proto != 6:
                return None
        else:
            return None
        sport, dport, seq, ack, doff, flags, window = _TCP.unpack_from(frame, tcp_off)
    except (IndexError, struct.error):
        return None
    header = (doff >> 4) * 4
    tsval = tsecr = None
    if header > 20:
        tsval, tsecr = _timestamps(frame[tcp_off + 20 : tcp_off + header])
    return Packet(
        t,
        _address(src),
        sport,
        _address(dst),
        dport,
        seq,
        ack,
        flags,
        max(ip_payload - header, 0),
        window,
        tsval,
        tsecr,
    )


def frames(path: str) -> Iterator[tuple]:
    """``(time, frame bytes, link type)`` for each record of a pcap or pcapng file."""
    import dpkt

    with open(path, "rb") as f:
        magic = f.read(4)
        f.seek(0)
        if magic in _PCAP_MAGICS:
            reader = dpkt.pcap.Reader(f)
        elif magic == _PCAPNG_MAGIC:
            reader = dpkt.pcapng.Reader(f)
        else:
            raise ValueError(
                f"capture: {path} is neither a pcap nor a pcapng file "
                f"(it starts with {magic.hex() or 'nothing'})"
            )
        linktype = reader.datalink()
        for t, frame in reader:
            yield float(t), frame, linktype


def read_tcp(path: str) -> Iterator[Packet]:
    """Every TCP segment in the capture at ``path``, in file order."""
    linktype = None
    for t, frame, linktype in frames(path):
        packet = parse_frame(t, frame, linktype)
        if packet is not None:
            yield packet
