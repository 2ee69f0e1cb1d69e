"""old-duplicate: a segment of incarnation A arrives in incarnation B of the same 4-tuple.

Incarnation A (client port 40000 -> server port 5000) sends a bulk of bytes, then a small
segment that the lab holds back; A's retransmission gets through and A closes. Then:

- ``time_wait=True``: the client's TIME_WAIT socket keeps the 4-tuple. Without timestamps B's
  connect() fails and the held segment finds only the listener. With timestamps Linux lets a
  socket bound to the port (SO_REUSEADDR) take the TIME_WAIT over at once: B starts 65537
  bytes past A's last sequence number, and PAWS drops A's late segment at B's server.
- ``time_wait=False`` (``tcp_max_tw_buckets=0``): B opens on the same 4-tuple and the held
  segment is delivered into it. Which defence stops it is read from the kernel's counters:
  PAWS (timestamps), the sequence window, or the RFC 5961 ACK check.

Linux's ISN is a per-4-tuple hash plus a 64 ns clock, so B's ISN is A's plus the elapsed time.
With ``overlap=True`` A's client sends 32 MiB, faster than that clock, so A's held bytes lie
ahead of B's client's ISN; B's client then sends exactly enough bytes that the held segment is
the next byte B's server expects. With ``overlap=False`` A sends no bulk and the clock alone
puts B's window past A's bytes.

The held segment's ACK number belongs to the other direction, and RFC 5961's ACK check in
``tcp_ack()`` (net/ipv4/tcp_input.c) drops a segment whose ACK number is further below the
receiver's snd_una than min(max_window, bytes_acked). ``reply_overlap=True`` lines that
direction up the same way: A's server sends 32 MiB to A's client before the held segment,
so its ACK number lies ahead of B's server's ISN, and B's server then sends exactly enough
bytes (all of them acknowledged before the delivery) that its snd_una equals the held
segment's ACK number. The segment is then delivered exactly as A sent it.
``old_ack="current"`` instead rewrites the ACK number to B's server's current snd_nxt.
``changed_fields`` is read from the bytes: the TCP header fields whose value differs between
the captured segment and the one delivered (the checksums, recomputed for every delivery,
are not counted). ``family=6`` runs it over IPv6, on ``::1``.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import NamedTuple, Optional

from ..capture import TcpView, to_trace
from ..faults import Match
from ..model.seq import seq_diff
from ..observe import counter_delta
from .base import Experiment, ExperimentResult, Param, register, shown
from .common import Reader, errno_name, unacked, views_outside

SERVER_PORT = 5000
CLIENT_PORT = 40000
BULK = 32 << 20  # outruns the ISN clock (15.6 MB/s) by about two seconds
OLD = b"A" * 1000  # the held segment's payload: A's bytes
OWN = b"c" * len(OLD)  # what B's client sends after the old segment was delivered
FROM_SERVER = Match(src_port=SERVER_PORT, dst_port=CLIENT_PORT)
REUSE_COUNTERS = ("TW", "TWRecycled", "TWKilled", "TCPTimeWaitOverflow")
RECYCLED_ISN = "A's last sequence number + 65537 (TIME_WAIT reused)"
CLOCK_ISN = "A's ISN + elapsed time / 64 ns (clock)"
# Counters that name a defence; the others that move are not attributions.
DEFENCE_COUNTERS = (
    "PAWSEstab",
    "PAWSOldAck",
    "TCPChallengeACK",
    "TCPACKSkippedChallenge",
    "TCPACKSkippedPAWS",
    "TCPACKSkippedSeq",
    "DelayedACKLost",
    "TCPDSACKOldSent",
    "BeyondWindow",
    "Tcp:OutRsts",
)


@dataclass(kw_only=True)
class OldDuplicateResult(ExperimentResult):
    QUIET_OPTIONS = {"family": 4}  # an IPv4 run reads as before IPv6 was an option

    old_bytes_delivered: int = shown()  # bytes of A read by B's application
    own_bytes_read: Optional[int] = shown()  # of B's client's own 1000 bytes, how many were read
    rejected_by: Optional[str] = shown()  # "TIME_WAIT", "PAWS", "sequence window", "RFC 5961 ACK check"
    reuse_error: Optional[str] = shown()  # errno of B's connect when TIME_WAIT holds the 4-tuple
    closer_state: str = shown()  # the client's A socket just after the close
    b_isn_from: Optional[str] = shown()  # how the kernel chose B's initial sequence number
    reuse_counters: dict = shown()  # moved from A's close to B's connect
    landed: str = shown()  # where the held segment's seq fell in B's receive space
    ack_landed: str = shown()  # where the ACK number delivered fell in B's server's send space
    changed_fields: list = shown()  # header fields the lab rewrote
    reply: str = shown()  # flags of the receiver's answer to the old segment
    defence_counters: dict = shown()  # counters moved by the delivery
    explanation: str = shown()
    # Timing-dependent detail, kept out of summary():
    isn_advance: Optional[int]  # B's client ISN minus A's
    b_bytes_before: int  # bytes B's client sent to reach the held segment
    reply_bytes_before: int  # bytes B's server sent to reach the held segment's ACK number
    server_isn_advance: Optional[int]  # B's server ISN minus A's


def _changed_fields(captured: bytes, delivered_tcp: bytes) -> list:
    """TCP fields whose value differs between a captured frame and the TCP segment the lab
    sent in its place; the checksum is left out (recomputed on every delivery)."""
    from scapy.layers.inet import TCP
    from scapy.layers.l2 import Ether

    old, new = Ether(captured)[TCP], TCP(delivered_tcp)  # over IPv4 or IPv6
    changed = [
        f.name
        for f in TCP.fields_desc
        if f.name != "chksum" and old.getfieldval(f.name) != new.getfieldval(f.name)
    ]
    if bytes(old.payload) != bytes(new.payload):
        changed.append("payload")
    return sorted(changed)


def _ack_landed(offset: int, acked: int) -> str:
    """Where an ACK number ``offset`` bytes from B's server's snd_nxt falls, when B's server
    has had ``acked`` bytes acknowledged and nothing is outstanding."""
    if offset == 0:
        return "at B's server's snd_una: everything it sent, nothing more"
    if offset > 0:
        return "beyond anything B's server has sent"
    if -offset > acked:
        return "behind B's server's snd_una by more than it has had acknowledged"
    return "behind B's server's snd_una, within what it has had acknowledged"


class Incarnation(NamedTuple):
    """An open connection on the experiment's 4-tuple, each end read by a :class:`Reader`."""

    client: socket.socket
    server: socket.socket
    server_reads: Reader  # what the server's application read
    client_reads: Reader


class Closed(NamedTuple):
    """Incarnation A after its close."""

    closer_state: str  # the client's A socket just after the close
    counters: dict  # the counters just before the close


class Handshake(NamedTuple):
    """Incarnation B as it opened, and where its initial sequence numbers came from."""

    client: socket.socket
    server: socket.socket
    syn: TcpView
    synack: TcpView
    isn_from: str  # RECYCLED_ISN or CLOCK_ISN
    isn_advance: int  # B's client ISN minus A's
    server_isn_advance: int  # B's server ISN minus A's


class Reopening(NamedTuple):
    """The attempt to open incarnation B."""

    handshake: Optional[Handshake]  # None when connect() failed
    reuse_error: Optional[str]  # connect()'s errno name
    reuse_counters: dict  # moved from A's close to B's connect


class LinedUp(NamedTuple):
    """Incarnation B once its sequence numbers have reached the held segment's."""

    b: Incarnation
    client_bytes: int  # bytes B's client sent to reach the held segment's sequence number
    server_bytes: int  # bytes B's server sent to reach its ACK number
    bulks: list  # (start, end) of those transfers


class Aim(NamedTuple):
    """Where the held segment falls in B, and the fields rewritten before its delivery."""

    landed: str
    ack_landed: str
    changes: dict


class Replay(NamedTuple):
    """The held segment delivered into B, and how B's server took it."""

    changed_fields: list
    reply: str  # flags of the receiver's answer
    defence_counters: dict


class Reads(NamedTuple):
    """What B's application read in the end."""

    old_bytes: int  # A's bytes
    own_bytes: Optional[int]  # of B's client's own bytes (None without B)


def open_incarnation_a(lab, listener) -> Incarnation:
    """Incarnation A, client port 40000 to server port 5000."""
    client, server = lab.accepted(listener, CLIENT_PORT, reuseaddr=True)
    return Incarnation(client, server, Reader(server), Reader(client))


def send_bulk(lab, a: Incarnation, overlap: bool, reply_overlap: bool) -> tuple[float, float]:
    """A's bulk transfer, to outrun the ISN clock: ``(start, end)`` of it."""
    # Both directions at once: the less time A takes, the further it outruns the clock.
    lab.step(
        f"A sends {BULK} bytes{' each way' if overlap and reply_overlap else ''}, faster than the ISN clock"
    )
    start = lab.now()
    sender = threading.Thread(target=a.server.sendall, args=(b"s" * BULK,), daemon=True)
    if reply_overlap:
        sender.start()
    if overlap:
        a.client.sendall(b"a" * BULK)
    lab.wait_for(
        lambda: (
            len(a.server_reads.got) >= (BULK if overlap else 0)
            and len(a.client_reads.got) >= (BULK if reply_overlap else 0)
        ),
        "A's bulk to arrive",
        timeout=20,
    )
    # Its last (possibly delayed) ACKs belong to the bulk, and are left out with it.
    lab.wait_for(lambda: unacked(a.client) == 0 and unacked(a.server) == 0, "A's bulk to be acknowledged")
    return start, lab.now()


def hold_a_segment(lab, a: Incarnation, sent_before: int) -> TcpView:
    """A's client sends :data:`OLD`; the lab holds the segment back and the retransmission
    gets through. Returns the held segment as captured."""
    match_data = Match(src_port=CLIENT_PORT, dst_port=SERVER_PORT, flags="PSH|ACK")
    rule = lab.hold(match_data, count=1)
    mark = lab.now()
    lab.step("A sends a segment that is held back")
    a.client.sendall(OLD)
    held = lab.wait_for_segment(match_data, "A's held segment", after=mark)
    lab.wait_for(
        lambda: len(a.server_reads.got) >= sent_before + len(OLD),
        "A's retransmission to arrive",
        timeout=5,
    )
    lab.remove(rule)
    # Closing with A's last bytes acknowledged keeps the close the same in every run: a
    # server that has sent data delays its ACKs, which could otherwise ride on its FIN or not.
    lab.wait_for(lambda: unacked(a.client) == 0, "A's server to acknowledge A's bytes")
    return held


def close_a(lab, a: Incarnation) -> Closed:
    """A's client closes first; waits until A's server side is gone."""
    a.client_reads.stop()
    a.client_reads.join(5)
    counters = lab.counters()
    lab.step("A closes, client first")
    a.client.close()
    a.server_reads.join(5)
    a.server.close()
    lab.wait_for(lambda: lab.state_of(SERVER_PORT, CLIENT_PORT) == "CLOSED", "A's server side to close")
    return Closed(lab.state_of(CLIENT_PORT, SERVER_PORT), counters)


def open_incarnation_b(
    lab, listener, a_closed: Closed, held: TcpView, overlap: bool, reply_overlap: bool
) -> Reopening:
    """B's client connects on A's 4-tuple; B's ISNs are compared with A's, which the held
    segment's numbers give (less A's bulk)."""
    mark = lab.now()
    try:
        client, server = lab.accepted(listener, CLIENT_PORT, reuseaddr=True)
    except OSError as exc:
        moved = counter_delta(a_closed.counters, lab.counters(), REUSE_COUNTERS)
        return Reopening(None, errno_name(exc), moved)
    moved = counter_delta(a_closed.counters, lab.counters(), REUSE_COUNTERS)
    syn = lab.wait_for_segment(Match(src_port=CLIENT_PORT, flags="SYN"), "B's SYN", after=mark)
    synack = lab.wait_for_segment(Match(src_port=SERVER_PORT, flags="SYN|ACK"), "B's SYN|ACK", after=mark)
    isn_a = (held.seq - (BULK if overlap else 0) - 1) % 2**32
    server_isn_a = (held.ack - (BULK if reply_overlap else 0) - 1) % 2**32
    recycled = moved.get("TWRecycled", 0) > 0
    handshake = Handshake(
        client,
        server,
        syn,
        synack,
        RECYCLED_ISN if recycled else CLOCK_ISN,
        (syn.seq - isn_a) % 2**32,
        (synack.seq - server_isn_a) % 2**32,
    )
    return Reopening(handshake, None, moved)


def _send_all_acknowledged(lab, sender, peer_reads, data: bytes, what: str) -> tuple:
    """Send ``data`` and wait until the peer has read it all and acknowledged it; return the
    ``(start, end)`` span of the transfer."""
    start = lab.now()
    sender.sendall(data)
    lab.wait_for(lambda: len(peer_reads.got) >= len(data), f"{what} to arrive", timeout=20)
    lab.wait_for(lambda: unacked(sender) == 0, f"{what} to be acknowledged")
    return start, lab.now()


def line_up(lab, b: Handshake, held: TcpView, overlap: bool, reply_overlap: bool) -> LinedUp:
    """B's client sends up to the held segment's sequence number (``overlap``), B's server
    up to its ACK number (``reply_overlap``)."""
    bulks = []
    gap = seq_diff(held.seq, b.syn.seq + 1)
    server_reads = Reader(b.server)
    if overlap and gap <= 0 and b.isn_from != RECYCLED_ISN:
        raise RuntimeError(
            f"A's {BULK} bytes did not outrun the ISN clock (B's ISN is {-gap} bytes past the held segment)"
        )
    client_bytes = 0
    if overlap and gap > 0:
        lab.step(f"B's client sends {gap} bytes, up to the held segment")
        bulks.append(_send_all_acknowledged(lab, b.client, server_reads, b"b" * gap, "B's bytes"))
        client_bytes = gap
    reply_gap = seq_diff(held.ack, b.synack.seq + 1)
    if reply_overlap and reply_gap <= 0:
        raise RuntimeError(
            f"A's server's {BULK} bytes did not outrun the ISN clock (B's "
            f"server's ISN is {-reply_gap} bytes past A's ACK number)"
        )
    client_reads = Reader(b.client)
    server_bytes = 0
    if reply_overlap:
        lab.step(f"B's server sends {reply_gap} bytes, up to the held segment's ACK number")
        bulks.append(
            _send_all_acknowledged(lab, b.server, client_reads, b"t" * reply_gap, "B's server's bytes")
        )
        server_bytes = reply_gap
    time.sleep(0.01)  # timestamps move on by more than PAWS's 1 ms tolerance
    return LinedUp(
        Incarnation(b.client, b.server, server_reads, client_reads), client_bytes, server_bytes, bulks
    )


def aim_held_segment(held: TcpView, b: Optional[Handshake], lined: Optional[LinedUp], old_ack: str) -> Aim:
    """From the handshake and the bytes each side read: the capture may miss frames of a
    bulk transfer, so its last ACKs are not relied on."""
    if b is None or lined is None:
        return Aim("no connection: only the listener", "", {})
    offset = seq_diff(held.seq, b.syn.seq + 1 + lined.client_bytes)
    landed = (
        "at B's next expected byte"
        if offset == 0
        else f"{'before' if offset < 0 else 'beyond'} B's next expected byte"
    )
    b_server_nxt = (b.synack.seq + 1 + lined.server_bytes) % 2**32
    changes = {"ack": b_server_nxt} if old_ack == "current" else {}
    # Where the ACK number B's server receives falls (rewritten or not).
    ack_offset = seq_diff(changes.get("ack", held.ack), b_server_nxt)
    return Aim(landed, _ack_landed(ack_offset, lined.server_bytes), changes)


def replay_held(lab, held: TcpView, changes: dict) -> Replay:
    """Delivers the held segment, with ``changes`` to its TCP fields."""
    before = lab.counters()
    mark = lab.now()
    lab.deliver(held, **changes)
    changed_fields = _changed_fields(held.frame.data, lab.injected[-1][1])
    # Generous: the wait ends when the answer is seen; a loaded machine can delay the capture.
    answer = lab.wait_for_segment(FROM_SERVER, "the receiver's answer", after=mark, timeout=5)
    time.sleep(0.1)
    moved = counter_delta(before, lab.counters(), DEFENCE_COUNTERS)
    return Replay(changed_fields, answer.flags, moved)


def send_own_bytes(lab, lined: Optional[LinedUp]) -> Reads:
    """B's client sends bytes of its own (with ``overlap``, at the old segment's numbers);
    then what B's application read is counted."""
    if lined is None:
        return Reads(0, None)
    b, got = lined.b, lined.b.server_reads.got
    lab.step(f"B's client sends {len(OWN)} bytes of its own")
    mark = lab.now()
    b.client.sendall(OWN)
    lab.wait_for_segment(FROM_SERVER, "B's server's answer to B's own bytes", after=mark, timeout=5)
    try:  # a short wait when old bytes got in: B's own are then dropped as duplicates
        lab.wait_for(
            lambda: got.count(OWN[:1]) >= len(OWN),
            "B's own bytes to be read",
            timeout=0.5 if got.count(OLD[:1]) else 3,
        )
    except TimeoutError:
        pass
    own_bytes = got.count(OWN[:1])
    b.server_reads.stop()
    b.client_reads.stop()
    return Reads(got.count(OLD[:1]), own_bytes)


def defence(reads: Reads, reuse_error: Optional[str], moved: dict) -> Optional[str]:
    """The defence that kept A's bytes out of B, read from the counters; None if none did."""
    if reads.old_bytes:
        return None
    if reuse_error:
        return "TIME_WAIT"
    if moved.get("PAWSEstab"):
        return "PAWS"
    if moved.get("TCPChallengeACK"):
        return "RFC 5961 ACK check"
    if any(moved.get(n) for n in ("DelayedACKLost", "TCPDSACKOldSent", "BeyondWindow", "TCPACKSkippedSeq")):
        return "sequence window"
    raise RuntimeError(f"the old segment was not delivered, yet no defence counter moved: {moved}")


def body(
    lab,
    time_wait: bool,
    timestamps: bool,
    old_ack: str,
    overlap: bool,
    reply_overlap: bool = False,
    family: int = 4,
) -> dict:
    address = lab.use_family(family)
    lab.start_capture()
    listener = lab.listener(SERVER_PORT)
    a = open_incarnation_a(lab, listener)
    bulks = [send_bulk(lab, a, overlap, reply_overlap)] if overlap or reply_overlap else []
    held = hold_a_segment(lab, a, sent_before=BULK if overlap else 0)
    a_closed = close_a(lab, a)
    reopening = open_incarnation_b(lab, listener, a_closed, held, overlap, reply_overlap)
    b = reopening.handshake
    lined = line_up(lab, b, held, overlap, reply_overlap) if b is not None else None
    where = aim_held_segment(held, b, lined, old_ack)
    replay = replay_held(lab, held, where.changes)
    reads = send_own_bytes(lab, lined)
    rejected_by = defence(reads, reopening.reuse_error, replay.defence_counters)
    time.sleep(0.05)
    trace = to_trace(
        views_outside(lab, bulks + (lined.bulks if lined else [])),
        (address, CLIENT_PORT),
        (address, SERVER_PORT),
        lambda v: "held" if v.frame == held.frame else lab.note_for(v),
    )
    return {
        "trace": trace.to_dicts(),
        "old_bytes_delivered": reads.old_bytes,
        "own_bytes_read": reads.own_bytes,
        "rejected_by": rejected_by,
        "reuse_error": reopening.reuse_error,
        "closer_state": a_closed.closer_state,
        "b_isn_from": b.isn_from if b else None,
        "reuse_counters": reopening.reuse_counters,
        "landed": where.landed,
        "ack_landed": where.ack_landed,
        "changed_fields": replay.changed_fields,
        "reply": replay.reply,
        "defence_counters": replay.defence_counters,
        "explanation": (REUSED if b and b.isn_from == RECYCLED_ISN else "")
        + EXPLAIN[rejected_by]
        + (DESYNC if reads.old_bytes else ""),
        "isn_advance": b.isn_advance if b else None,
        "b_bytes_before": lined.client_bytes if lined else 0,
        "reply_bytes_before": lined.server_bytes if lined else 0,
        "server_isn_advance": b.server_isn_advance if b else None,
    }


EXPLAIN = {
    "TIME_WAIT": "the client's TIME_WAIT socket holds the 4-tuple, so incarnation B cannot "
    "start; A's late segment finds no connection and is answered with a reset",
    "PAWS": "the old segment's timestamp is older than the last one B has seen: PAWS drops it",
    "RFC 5961 ACK check": "the old segment's ACK number lies further behind B's server's "
    "snd_una than the bytes B's server has had acknowledged: it drops "
    "the segment and sends a challenge ACK",
    "sequence window": "the old segment's bytes lie outside B's receive window: dropped, and "
    "answered with a duplicate ACK",
    None: "no defence stopped it: B's application read A's bytes as if B's peer had sent them",
}
REUSED = (
    "TIME_WAIT let B reuse the 4-tuple at once (timestamps on, port bound with "
    "SO_REUSEADDR) and started B 65537 bytes past A; "
)
DESYNC = (
    "; B's server now acknowledges bytes B's client never sent, and when B's client "
    "sends its own bytes at those sequence numbers, B's server discards them as "
    "duplicates: A's bytes took their place"
)


register(
    Experiment(
        name="old-duplicate",
        captures=True,
        summary="Deliver a held segment of one incarnation into the next one on the same 4-tuple.",
        params=(
            Param(
                "time_wait", bool, True, "the closer keeps TIME_WAIT (False: net.ipv4.tcp_max_tw_buckets=0)"
            ),
            Param("timestamps", bool, True, "TCP timestamps, and with them PAWS (net.ipv4.tcp_timestamps)"),
            Param(
                "old_ack",
                str,
                "original",
                "the held segment's ACK number: as A sent it, or rewritten to B's server's current snd_nxt",
                choices=("original", "current"),
            ),
            Param(
                "overlap",
                bool,
                True,
                "A's client sends 32 MiB, outrunning the ISN clock, and B's client sends up to "
                "the held segment",
            ),
            Param(
                "reply_overlap",
                bool,
                False,
                "A's server sends 32 MiB too, and B's server sends up to the held segment's ACK number",
            ),
            Param("family", int, 4, "IP version: 4 (127.0.0.1) or 6 (::1)", choices=(4, 6)),
        ),
        body=f"{__name__}:body",
        result=OldDuplicateResult,
        sysctls=lambda p: {
            "net.ipv4.tcp_max_tw_buckets": 131072 if p["time_wait"] else 0,
            "net.ipv4.tcp_timestamps": 1 if p["timestamps"] else 0,
        },
        timeout=lambda p: 60.0,
        variants=(
            {
                "time_wait": False,
                "timestamps": False,
                "old_ack": "original",
                "overlap": True,
                "reply_overlap": True,
            },
            {
                "time_wait": False,
                "timestamps": True,
                "old_ack": "original",
                "overlap": True,
                "reply_overlap": True,
            },
            {"time_wait": True, "timestamps": True, "old_ack": "original", "overlap": True},
            {"time_wait": True, "timestamps": False, "old_ack": "original", "overlap": True},
            {"time_wait": False, "timestamps": True, "old_ack": "original", "overlap": True},
            {"time_wait": False, "timestamps": True, "old_ack": "current", "overlap": True},
            {"time_wait": False, "timestamps": False, "old_ack": "original", "overlap": True},
            {"time_wait": False, "timestamps": False, "old_ack": "current", "overlap": True},
            {"time_wait": False, "timestamps": True, "old_ack": "original", "overlap": False},
            {"time_wait": False, "timestamps": False, "old_ack": "original", "overlap": False},
            {"time_wait": False, "timestamps": False, "old_ack": "current", "overlap": False},
            {
                "time_wait": False,
                "timestamps": False,
                "old_ack": "original",
                "overlap": True,
                "reply_overlap": True,
                "family": 6,
            },
        ),
    )
)
