"""Capture every segment on a namespace's loopback, as Wireshark would see it.

A packet socket (AF_PACKET) bound to ``lo`` receives each frame with the kernel's
timestamp. Scapy parses the frames and writes pcap files. On loopback each packet passes the
tap twice (leaving and arriving); like libpcap we keep the arriving copy only. On any other
interface (a topology's veth link) a frame passes once, leaving or arriving, and both are kept;
each frame remembers the link it was seen on.
"""

from __future__ import annotations

import fcntl
import select
import socket
import struct
import termios
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

from .trace import Segment, Trace, flags_text

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SO_TIMESTAMPNS = 35
SCAPY_FLAGS = {"S": "SYN", "F": "FIN", "R": "RST", "P": "PSH", "A": "ACK", "U": "URG", "E": "ECE", "C": "CWR"}


@dataclass(frozen=True)
class Frame:
    t: float  # CLOCK_REALTIME seconds, from the kernel's receive timestamp
    data: bytes  # Ethernet frame as captured (TCP checksum possibly partial)
    link: str = ""  # where it was seen: "" for the namespace's loopback, else "host:iface"

    def tcp(self) -> Optional[TcpView]:
        return TcpView.parse(self)


@dataclass(frozen=True)
class TcpView:
    """The fields of one captured TCP segment (over IPv4 or IPv6) the course needs."""

    t: float
    src: tuple
    dst: tuple
    flags: str
    seq: int
    ack: int
    length: int
    tsval: Optional[int]
    tsecr: Optional[int]
    frame: Frame
    window: int = 0
    options: bytes = b""  # the TCP header's options, as sent

    @classmethod
    def parse(cls, frame: Frame) -> Optional[TcpView]:
        from scapy.layers.inet import IP, TCP
        from scapy.layers.inet6 import IPv6
        from scapy.layers.l2 import Ether

        pkt = Ether(frame.data)
        if TCP not in pkt or (IP not in pkt and IPv6 not in pkt):
            return None
        tcp = pkt[TCP]
        if IP in pkt:
            ip = pkt[IP]
            payload = ip.len - ip.ihl * 4 - tcp.dataofs * 4
        else:
            ip = pkt[IPv6]
            payload = ip.plen - tcp.dataofs * 4
        tsval = tsecr = None
        for name, value in tcp.options:
            if name == "Timestamp":
                tsval, tsecr = value
        flags = flags_text(SCAPY_FLAGS[c] for c in str(tcp.flags) if c in SCAPY_FLAGS)
        options = bytes(tcp)[20 : tcp.dataofs * 4]
        return cls(
            frame.t,
            (ip.src, tcp.sport),
            (ip.dst, tcp.dport),
            flags,
            tcp.seq,
            tcp.ack,
            payload,
            tsval,
            tsecr,
            frame,
            tcp.window,
            options,
        )


class Capture:
    """Start with :meth:`start`, stop with :meth:`stop`; frames accumulate in ``frames``."""

    def __init__(self, iface: str = "lo", link: str = ""):
        self.iface = iface
        self.link = link
        self.frames: list = []
        self._sock: Optional[socket.socket] = None
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def start(self) -> Capture:
        # Scapy takes a good fraction of a second to import: pay it now, not mid-experiment.
        import scapy.layers.inet  # noqa: F401
        import scapy.layers.l2  # noqa: F401

        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        sock.bind((self.iface, 0))
        self._sock = sock
        self._thread = threading.Thread(target=self._run, args=(sock,), name="capture", daemon=True)
        self._thread.start()
        return self

    def _run(self, sock: socket.socket) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([sock], [], [], 0.05)
            if not ready:
                continue
            data, anc, _flags, addr = sock.recvmsg(65535, socket.CMSG_SPACE(16))
            if addr[2] == PACKET_OUTGOING and self.iface == "lo":
                continue
            t = time.time()
            for level, kind, value in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", value[:16])
                    t = sec + nsec / 1e9
            with self._lock:
                self.frames.append(Frame(t, data, self.link))

    def drain(self, settle: float = 0.05, timeout: float = 5.0) -> None:
        """Wait until the capture has read every frame the kernel queued for it (at most
        ``timeout`` s), then ``settle`` s more. A queue left full by a bulk transfer on a loaded
        machine would otherwise drop the next frames, the ones an experiment waits for."""
        sock, deadline = self._sock, time.monotonic() + timeout
        while sock is not None and self._thread is not None and time.monotonic() < deadline:
            try:
                pending = struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0" * 4))[0]
            except OSError:
                break
            if not pending:
                break
            time.sleep(0.005)
        time.sleep(settle)

    def stop(self) -> Capture:
        if self._thread:
            self.drain()
            self._stop.set()
            self._thread.join(timeout=2)
            self._thread = None
        if self._sock:
            self._sock.close()
            self._sock = None
        return self

    def snapshot(self) -> list:
        with self._lock:
            return list(self.frames)

    def tcp(self, start: Optional[float] = None, end: Optional[float] = None) -> list:
        """Captured TCP segments as :class:`TcpView`, optionally within [start, end]."""
        views = []
        for f in self.snapshot():
            if (start is not None and f.t < start) or (end is not None and f.t > end):
                continue
            v = f.tcp()
            if v is not None:
                views.append(v)
        return views


# What a segment's note in a trace says in a capture file, as a pcapng packet comment.
SEGMENT_COMMENTS = {
    "dropped": "dropped by the experiment's nftables rule: the receiver never got it",
    "held": "held back by the experiment's nftables rule, to be delivered late",
    "delivered late": "delivered late by the experiment: an old duplicate of a held segment",
    "crafted": "crafted and sent by the experiment",
}


def segment_comment(note: str) -> str:
    return SEGMENT_COMMENTS.get(note, note)


def _segment_key(sport, dport, flags: str, seq, ack, length: int) -> tuple:
    return (sport, dport, flags, seq % 2**32, (ack or 0) % 2**32 if "ACK" in flags else None, length)


def frame_notes(frames: list, trace: list) -> list:
    """Each frame's note from ``trace`` (a :meth:`Trace.to_dicts` list made from the same
    capture): the segments with the same ports, flags, wire sequence and acknowledgement
    numbers and length are paired in the order they were captured. ``""`` for a frame
    without one."""
    pending: dict = {}
    for seg in trace:
        key = _segment_key(
            seg["sport"], seg["dport"], seg["flags"], seg["seq_abs"], seg["ack_abs"], seg["length"]
        )
        pending.setdefault(key, []).append(seg.get("note", ""))
    notes = []
    for f in frames:
        v = f.tcp()
        queue = (
            None
            if v is None
            else pending.get(_segment_key(v.src[1], v.dst[1], v.flags, v.seq, v.ack, v.length))
        )
        notes.append(queue.pop(0) if queue else "")
    return notes


def write_pcap(path: str, frames: list, notes: Optional[list] = None) -> None:
    """Write frames to a capture file (Ethernet link type) that Wireshark and tcpdump open:
    pcapng when ``path`` ends in ``.pcapng``, each frame with a note (``notes``, one per frame)
    carrying it as a packet comment; classic pcap otherwise, which has no room for comments."""
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap, wrpcapng

    pcapng = str(path).endswith(".pcapng")
    packets = []
    for i, f in enumerate(frames):
        p = Ether(f.data)
        p.time = f.t
        if pcapng and notes and notes[i]:
            p.comments = [segment_comment(notes[i]).encode()]
        packets.append(p)
    (wrpcapng if pcapng else wrpcap)(path, packets)


def to_trace(views: list, client: tuple, server: tuple, note_for: Optional[Callable] = None) -> Trace:
    """Segments between ``client`` and ``server`` (each ``(address, port)``) as a :class:`Trace`.

    Sequence numbers are made relative to each side's ISN: the seq of its SYN when the SYN is
    in ``views``, else its first seq minus one. ``note_for(view)`` may annotate a segment
    (e.g. "dropped").
    """
    names = {client: "client", server: "server"}
    mine = [v for v in views if {v.src, v.dst} == {client, server}]
    isn = {}
    for side in (client, server):
        sent = [v for v in mine if v.src == side]
        syn = next((v for v in sent if "SYN" in v.flags), None)
        if syn is not None:
            isn[side] = syn.seq
        elif sent:
            isn[side] = (sent[0].seq - 1) % 2**32
    t0 = mine[0].t if mine else 0.0
    segments = []
    for v in mine:
        rel_ack = (v.ack - isn[v.dst]) % 2**32 if "ACK" in v.flags and v.dst in isn else 0
        segments.append(
            Segment(
                t=round(v.t - t0, 6),
                src=names[v.src],
                dst=names[v.dst],
                flags=v.flags,
                seq=(v.seq - isn[v.src]) % 2**32,
                ack=rel_ack,
                length=v.length,
                seq_abs=v.seq,
                ack_abs=v.ack,
                tsval=v.tsval,
                tsecr=v.tsecr,
                note=(note_for(v) if note_for else "") or "",
                sport=v.src[1],
                dport=v.dst[1],
                link=v.frame.link,
                saddr=v.src[0],
                daddr=v.dst[0],
                window=getattr(v, "window", None),
                tcp_options=getattr(v, "options", b"").hex(),
            )
        )
    return Trace(segments, ("client", "server"))
