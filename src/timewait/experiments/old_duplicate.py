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
are not counted).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Optional

from ..capture import to_trace
from ..faults import Match
from ..lab import ADDR
from ..model.seq import seq_diff
from ..observe import counter_delta
from .base import Experiment, ExperimentResult, Param, register, shown
from .common import Reader, errno_name, unacked, views_outside

SERVER_PORT = 5000
CLIENT_PORT = 40000
BULK = 32 << 20  # outruns the ISN clock (15.6 MB/s) by about two seconds
OLD = b"A" * 1000  # the held segment's payload: A's bytes
OWN = b"c" * len(OLD)  # what B's client sends after the old segment was delivered
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
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether

    old, new = Ether(captured)[IP][TCP], TCP(delivered_tcp)
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


def body(
    lab, time_wait: bool, timestamps: bool, old_ack: str, overlap: bool, reply_overlap: bool = False
) -> dict:
    lab.start_capture()
    listener = lab.listener(SERVER_PORT)
    match_data = Match(src_port=CLIENT_PORT, dst_port=SERVER_PORT, flags="PSH|ACK")
    bulks = []  # (start, end) of bulk transfers, left out of the trace

    # Incarnation A.
    client, server = lab.accepted(listener, CLIENT_PORT, reuseaddr=True)
    reader, client_reader = Reader(server), Reader(client)
    if overlap or reply_overlap:
        # Both directions at once: the less time A takes, the further it outruns the clock.
        lab.step(
            f"A sends {BULK} bytes{' each way' if overlap and reply_overlap else ''}, "
            "faster than the ISN clock"
        )
        start = lab.now()
        sender = threading.Thread(target=server.sendall, args=(b"s" * BULK,), daemon=True)
        if reply_overlap:
            sender.start()
        if overlap:
            client.sendall(b"a" * BULK)
        lab.wait_for(
            lambda: (
                len(reader.got) >= (BULK if overlap else 0)
                and len(client_reader.got) >= (BULK if reply_overlap else 0)
            ),
            "A's bulk to arrive",
            timeout=20,
        )
        # Its last (possibly delayed) ACKs belong to the bulk, and are left out with it.
        lab.wait_for(lambda: unacked(client) == 0 and unacked(server) == 0, "A's bulk to be acknowledged")
        bulks.append((start, lab.now()))
    rule = lab.hold(match_data, count=1)
    mark = lab.now()
    lab.step("A sends a segment that is held back")
    client.sendall(OLD)
    held = lab.wait_for_segment(match_data, "A's held segment", after=mark)
    lab.wait_for(
        lambda: len(reader.got) >= (BULK if overlap else 0) + len(OLD),
        "A's retransmission to arrive",
        timeout=5,
    )
    lab.remove(rule)
    # Closing with A's last bytes acknowledged keeps the close the same in every run: a
    # server that has sent data delays its ACKs, which could otherwise ride on its FIN or not.
    lab.wait_for(lambda: unacked(client) == 0, "A's server to acknowledge A's bytes")
    client_reader.stop()
    client_reader.join(5)
    before_close = lab.counters()
    lab.step("A closes, client first")
    client.close()
    reader.join(5)
    server.close()
    lab.wait_for(lambda: lab.state_of(SERVER_PORT, CLIENT_PORT) == "CLOSED", "A's server side to close")
    closer_state = lab.state_of(CLIENT_PORT, SERVER_PORT)

    # Incarnation B.
    reuse_error = None
    b_server = b_isn_from = None
    mark_b = lab.now()
    try:
        b_client, b_server = lab.accepted(listener, CLIENT_PORT, reuseaddr=True)
    except OSError as exc:
        reuse_error = errno_name(exc)
    reuse_moved = counter_delta(before_close, lab.counters(), REUSE_COUNTERS)
    isn_advance, b_bytes, landed = None, 0, "no connection: only the listener"
    server_isn_advance, reply_bytes, ack_landed = None, 0, ""
    b_reader = b_client_reader = None
    if reuse_error is None:
        syn_b = lab.wait_for_segment(Match(src_port=CLIENT_PORT, flags="SYN"), "B's SYN", after=mark_b)
        synack = lab.wait_for_segment(
            Match(src_port=SERVER_PORT, flags="SYN|ACK"), "B's SYN|ACK", after=mark_b
        )
        isn_a = (held.seq - (BULK if overlap else 0) - 1) % 2**32
        isn_advance = (syn_b.seq - isn_a) % 2**32
        server_isn_a = (held.ack - (BULK if reply_overlap else 0) - 1) % 2**32
        server_isn_advance = (synack.seq - server_isn_a) % 2**32
        gap = seq_diff(held.seq, syn_b.seq + 1)
        recycled = reuse_moved.get("TWRecycled", 0) > 0
        b_isn_from = RECYCLED_ISN if recycled else CLOCK_ISN
        b_reader = Reader(b_server)
        if overlap and gap <= 0 and not recycled:
            raise RuntimeError(
                f"A's {BULK} bytes did not outrun the ISN clock "
                f"(B's ISN is {-gap} bytes past the held segment)"
            )
        if overlap and gap > 0:
            lab.step(f"B's client sends {gap} bytes, up to the held segment")
            start = lab.now()
            b_client.sendall(b"b" * gap)
            lab.wait_for(lambda: len(b_reader.got) >= gap, "B's bytes to arrive", timeout=20)
            lab.wait_for(lambda: unacked(b_client) == 0, "B's bytes to be acknowledged")
            bulks.append((start, lab.now()))
            b_bytes = gap
        reply_gap = seq_diff(held.ack, synack.seq + 1)
        if reply_overlap and reply_gap <= 0:
            raise RuntimeError(
                f"A's server's {BULK} bytes did not outrun the ISN clock (B's "
                f"server's ISN is {-reply_gap} bytes past A's ACK number)"
            )
        b_client_reader = Reader(b_client)
        if reply_overlap:
            lab.step(f"B's server sends {reply_gap} bytes, up to the held segment's ACK number")
            start = lab.now()
            b_server.sendall(b"t" * reply_gap)
            lab.wait_for(
                lambda: len(b_client_reader.got) >= reply_gap, "B's server's bytes to arrive", timeout=20
            )
            lab.wait_for(
                lambda: unacked(b_server) == 0, "B's client to acknowledge all of B's server's bytes"
            )
            bulks.append((start, lab.now()))
            reply_bytes = reply_gap
    got_b = b_reader.got if b_reader else bytearray()  # what B's application read
    from_server = Match(src_port=SERVER_PORT, dst_port=CLIENT_PORT)
    changes = {}
    if b_server is not None:
        # From the handshake and the bytes each side read: the capture may miss frames of a
        # bulk transfer, so its last ACKs are not relied on.
        offset = seq_diff(held.seq, syn_b.seq + 1 + b_bytes)
        landed = (
            "at B's next expected byte"
            if offset == 0
            else f"{'before' if offset < 0 else 'beyond'} B's next expected byte"
        )
        b_server_nxt = (synack.seq + 1 + reply_bytes) % 2**32
        if old_ack == "current":
            changes["ack"] = b_server_nxt
        # Where the ACK number B's server receives falls (rewritten or not).
        ack_landed = _ack_landed(seq_diff(changes.get("ack", held.ack), b_server_nxt), reply_bytes)
        time.sleep(0.01)  # timestamps move on by more than PAWS's 1 ms tolerance

    before = lab.counters()
    mark_d = lab.now()
    lab.deliver(held, **changes)
    changed_fields = _changed_fields(held.frame.data, lab.injected[-1][1])
    # Generous: the wait ends when the answer is seen; a loaded machine can delay the capture.
    answer = lab.wait_for_segment(from_server, "the receiver's answer", after=mark_d, timeout=5)
    time.sleep(0.1)
    moved = counter_delta(before, lab.counters(), DEFENCE_COUNTERS)
    own_bytes_read = None
    if b_server is not None:
        # B's client now sends bytes of its own; with overlap, at the old segment's numbers.
        lab.step(f"B's client sends {len(OWN)} bytes of its own")
        mark_f = lab.now()
        b_client.sendall(OWN)
        lab.wait_for_segment(from_server, "B's server's answer to B's own bytes", after=mark_f, timeout=5)
        try:  # a short wait when old bytes got in: B's own are then dropped as duplicates
            lab.wait_for(
                lambda: got_b.count(OWN[:1]) >= len(OWN),
                "B's own bytes to be read",
                timeout=0.5 if got_b.count(OLD[:1]) else 3,
            )
        except TimeoutError:
            pass
        own_bytes_read = got_b.count(OWN[:1])
    for r in (b_reader, b_client_reader):
        if r is not None:
            r.stop()
    old_bytes = got_b.count(OLD[:1])

    if old_bytes:
        rejected_by = None
    elif reuse_error:
        rejected_by = "TIME_WAIT"
    elif moved.get("PAWSEstab"):
        rejected_by = "PAWS"
    elif moved.get("TCPChallengeACK"):
        rejected_by = "RFC 5961 ACK check"
    elif any(moved.get(n) for n in ("DelayedACKLost", "TCPDSACKOldSent", "BeyondWindow", "TCPACKSkippedSeq")):
        rejected_by = "sequence window"
    else:
        raise RuntimeError(f"the old segment was not delivered, yet no defence counter moved: {moved}")
    time.sleep(0.05)
    trace = to_trace(
        views_outside(lab, bulks),
        (ADDR, CLIENT_PORT),
        (ADDR, SERVER_PORT),
        lambda v: "held" if v.frame == held.frame else lab.note_for(v),
    )
    return {
        "trace": trace.to_dicts(),
        "old_bytes_delivered": old_bytes,
        "own_bytes_read": own_bytes_read,
        "rejected_by": rejected_by,
        "reuse_error": reuse_error,
        "closer_state": closer_state,
        "b_isn_from": b_isn_from,
        "reuse_counters": reuse_moved,
        "landed": landed,
        "ack_landed": ack_landed,
        "changed_fields": changed_fields,
        "reply": answer.flags,
        "defence_counters": moved,
        "explanation": (REUSED if b_isn_from == RECYCLED_ISN else "")
        + EXPLAIN[rejected_by]
        + (DESYNC if old_bytes else ""),
        "isn_advance": isn_advance,
        "b_bytes_before": b_bytes,
        "reply_bytes_before": reply_bytes,
        "server_isn_advance": server_isn_advance,
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
        ),
    )
)
