"""A sans-IO TCP endpoint: one host's side of one 4-tuple, across incarnations.

The endpoint does no I/O and keeps no clock. Every call takes the current time and returns
the segments to put on the wire (:class:`Packet`); timers are deadlines the driver asks for
with :meth:`Endpoint.next_deadline` and delivers with :meth:`Endpoint.on_timer`. State
changes follow :data:`timewait.model.states.TRANSITIONS`; this module decides which event a
segment is (after RFC 9293 section 3.10.7's acceptability checks) and carries out actions.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import NamedTuple, Optional

from . import states as S
from .seq import MOD, seq_lt

_TRANSITIONS = S.TRANSITIONS
ISN_POLICIES = ("fixed", "clock", "random")
RFC793_CLOCK_RATE = 250_000  # ISN ticks per second: one per 4 microseconds


def _check_range(name, value, low, high, low_open=False):
    ok = (low < value if low_open else low <= value) and value <= high
    if not ok:
        bracket = "(" if low_open else "["
        raise ValueError(f"{name}: must be in {bracket}{low}, {high}], got {value}")


@dataclass
class EndpointConfig:
    """What one endpoint's kernel would be configured with."""

    time_wait: float = 60.0  # seconds in TIME_WAIT (Linux: 60)
    isn_policy: str = "clock"  # "fixed", "clock" (RFC 793 / RFC 6528) or "random"
    isn_fixed: int = 1000
    isn_clock_rate: float = RFC793_CLOCK_RATE
    isn_secret: Optional[int] = None  # RFC 6528's F(4-tuple, secret); drawn if None
    isns: tuple = ()  # explicit ISNs, one per incarnation, overriding the policy
    timestamps: bool = False  # RFC 7323 timestamps, and with them PAWS
    ts_hz: float = 1000.0
    ts_offset: Optional[int] = None  # per host pair, as Linux does; drawn if None
    rto: float = 0.2  # first retransmission timeout (Linux's minimum)
    max_rto: float = 120.0
    max_retries: int = 8  # Linux tcp_orphan_retries=0 means 8
    rcv_wnd: int = 65535
    ack_check: bool = True  # RFC 5961 section 5: drop segments acking what we never sent
    rfc1337: bool = False  # ignore RST in TIME_WAIT (Linux tcp_rfc1337)
    accept_syn_in_time_wait: bool = True  # RFC 6191: reopen from TIME_WAIT
    delayed_ack: float = 0.04  # used for the ACK of a FIN when merge_fin_ack
    merge_fin_ack: bool = False  # hold the ACK of a FIN hoping to piggy-back it on our FIN
    fin_wait_2_timeout: Optional[float] = None  # Linux tcp_fin_timeout for orphans
    invalid_ratelimit: float = 0.5  # Linux tcp_invalid_ratelimit: stops ACK wars

    def __post_init__(self):
        if self.isn_policy not in ISN_POLICIES:
            raise ValueError(f"isn_policy: must be one of {', '.join(ISN_POLICIES)}, got {self.isn_policy!r}")
        _check_range("time_wait", self.time_wait, 0, 1e9)
        _check_range("rto", self.rto, 0, 1e6, low_open=True)
        _check_range("max_retries", self.max_retries, 0, 1000)
        _check_range("rcv_wnd", self.rcv_wnd, 1, (1 << 30))
        _check_range("isn_clock_rate", self.isn_clock_rate, 0, 1e12)
        _check_range("delayed_ack", self.delayed_ack, 0, 10)


class Packet:
    """A segment on the model's wire, with absolute 32-bit sequence numbers.

    ``rel_seq``/``rel_ack`` are relative to the ISNs of the incarnation that sent it, as a
    capture tool shows them; ``incarnation`` is ground truth for judging outcomes, which
    TCP itself cannot see.
    """

    __slots__ = (
        "src",
        "dst",
        "flags",
        "seq",
        "ack",
        "length",
        "tsval",
        "tsecr",
        "rel_seq",
        "rel_ack",
        "note",
        "incarnation",
    )

    def __init__(
        self,
        src,
        dst,
        flags,
        seq,
        ack,
        length=0,
        tsval=None,
        tsecr=None,
        rel_seq=0,
        rel_ack=0,
        note="",
        incarnation=0,
    ):
        self.src, self.dst, self.flags = src, dst, flags
        self.seq, self.ack, self.length = seq, ack, length
        self.tsval, self.tsecr = tsval, tsecr
        self.rel_seq, self.rel_ack = rel_seq, rel_ack
        self.note, self.incarnation = note, incarnation

    def copy(self, **changes) -> Packet:
        p = Packet(
            self.src,
            self.dst,
            self.flags,
            self.seq,
            self.ack,
            self.length,
            self.tsval,
            self.tsecr,
            self.rel_seq,
            self.rel_ack,
            self.note,
            self.incarnation,
        )
        for k, v in changes.items():
            setattr(p, k, v)
        return p

    @property
    def flag_set(self) -> frozenset:
        return frozenset(self.flags.split("|"))

    def __repr__(self):
        return (
            f"Packet({self.src}->{self.dst} {self.flags} seq={self.rel_seq} "
            f"ack={self.rel_ack} len={self.length})"
        )


class TCB:
    """Transmission control block: the variables of one incarnation (RFC 9293 3.3.1)."""

    def __init__(self, incarnation: int):
        self.incarnation = incarnation
        self.iss = self.snd_una = self.snd_nxt = 0
        self.irs = self.rcv_nxt = 0
        self.peer_incarnation = 0
        self.max_snd_wnd = 65535
        self.fin_seq: Optional[int] = None  # sequence number of our FIN once sent
        self.fin_received = False
        self.ts_ok = False
        self.ts_recent = 0
        self.unacked: list[tuple[str, int, int]] = []  # (flags, seq, length) awaiting acknowledgment
        self.rto = 0.0
        self.retries = 0
        self.last_invalid_reply = float("-inf")


class StateChange(NamedTuple):
    """An endpoint entering a state: a row of a state timeline (what
    :func:`timewait.plots.state_timeline` draws)."""

    t: float
    endpoint: str
    state: str

    def __repr__(self) -> str:  # printed as the plain tuple it is, as the course shows it
        return tuple.__repr__(self)


class Transition(NamedTuple):
    """One row of :data:`timewait.model.states.TRANSITIONS` taken by an endpoint at ``t``."""

    t: float
    endpoint: str
    state: str
    event: str
    next_state: str

    def __repr__(self) -> str:
        return tuple.__repr__(self)


@dataclass
class Rejection:
    t: float
    packet: Packet
    defence: str  # "paws", "sequence-window", "ack-check", "no-connection", "rst-check"
    state: str


@dataclass
class Delivery:
    """Bytes the endpoint accepted from the network."""

    t: float
    incarnation: int  # the endpoint's own incarnation that accepted them
    sender_incarnation: int  # the peer incarnation that sent them
    rel_seq: int
    length: int
    note: str


class Endpoint:
    def __init__(
        self,
        name: str,
        peer: str,
        config: Optional[EndpointConfig] = None,
        rng: Optional[random.Random] = None,
    ):
        self.name, self.peer = name, peer
        self.config = config or EndpointConfig()
        self.rng = rng or random.Random(0)
        c = self.config
        self.isn_secret = c.isn_secret if c.isn_secret is not None else self.rng.randrange(MOD)
        self.ts_offset = c.ts_offset if c.ts_offset is not None else self.rng.randrange(MOD)
        self.state = S.CLOSED
        self.listening = False
        self.tcb: Optional[TCB] = None
        self.incarnations = 0
        self.timers: dict[str, float] = {}  # name -> deadline
        self.timeline: list[StateChange] = []
        self.transitions: list[Transition] = []
        # (t, "established"|"eof"|"reset"|"gave-up"|"closed")
        self.notifications: list[tuple[float, str]] = []
        self.history: list[tuple[float, str]] = []  # every notification, kept after the driver consumed it
        self.rejections: list[Rejection] = []
        self.deliveries: list[Delivery] = []
        self.resets_received = 0
        self._out: list[Packet] = []

    # ---- the application side --------------------------------------------------------
    def listen(self, now: float) -> list:
        self.listening = True
        self._apply(now, S.APP_LISTEN)
        return self._flush()

    def connect(self, now: float) -> list:
        if self.state != S.CLOSED:
            raise S.TransitionError(self.state, S.APP_CONNECT, self.name)
        self._new_tcb(now)
        self._apply(now, S.APP_CONNECT)
        return self._flush()

    def close(self, now: float) -> list:
        self._apply(now, S.APP_CLOSE)
        return self._flush()

    def send(self, nbytes: int, now: float) -> list:
        """Queue ``nbytes`` of application data as one segment."""
        if self.state not in (S.ESTABLISHED, S.CLOSE_WAIT):
            raise S.TransitionError(self.state, f"send {nbytes} bytes", self.name)
        if nbytes <= 0:
            raise ValueError(f"nbytes: must be > 0, got {nbytes}")
        tcb = self._conn()
        self.timers.pop("delack", None)  # the data segment carries the ACK
        self._emit(now, "PSH|ACK", tcb.snd_nxt, tcb.rcv_nxt, nbytes)
        self._queue_for_retransmission(now, "PSH|ACK", tcb.snd_nxt, nbytes)
        tcb.snd_nxt = (tcb.snd_nxt + nbytes) % MOD
        return self._flush()

    @property
    def tuple_in_use(self) -> bool:
        """Whether a connect() from this port would find the 4-tuple still taken."""
        return self.state != S.CLOSED

    # ---- timers ----------------------------------------------------------------------
    def next_deadline(self) -> Optional[float]:
        return min(self.timers.values()) if self.timers else None

    def on_timer(self, now: float) -> list:
        timers = self.timers
        for name, deadline in sorted(timers.items(), key=_by_deadline):
            if deadline <= now and timers.get(name) == deadline:
                del timers[name]
                getattr(self, "_timer_" + name)(now)
        return self._flush()

    def _timer_time_wait(self, now):
        self._apply(now, S.TIMEOUT_2MSL)

    def _timer_fin_wait_2(self, now):
        self._apply(now, S.TIMEOUT_FIN_WAIT_2)

    def _timer_delack(self, now):
        self._send_ack(now)

    def _timer_rto(self, now):
        tcb = self.tcb
        if tcb is None or not tcb.unacked:
            return
        if tcb.retries >= self.config.max_retries:
            self._notify(now, "gave-up")
            self._apply(now, S.GIVE_UP)
            return
        tcb.retries += 1
        tcb.rto = min(tcb.rto * 2, self.config.max_rto)
        for flags, seq, length in tcb.unacked:
            ack = tcb.rcv_nxt if "ACK" in flags else 0
            self._emit(now, flags, seq, ack, length, note="retransmission")
        self.timers["rto"] = now + tcb.rto

    # ---- the network side ------------------------------------------------------------
    def receive(self, p: Packet, now: float) -> list:
        if self.tcb is None:
            self._receive_without_connection(p, now)
        elif self.state == S.SYN_SENT:
            self._receive_in_syn_sent(p, now)
        else:
            self._receive_synchronized(p, now)
        return self._flush()

    def _receive_without_connection(self, p, now):
        flags = p.flags  # "RST" in flags: no flag name is part of another (see FLAG_ORDER)
        if "RST" in flags:
            return  # never answer a reset
        if self.listening and "ACK" not in flags and "SYN" in flags:
            self._new_tcb(now)
            self._take_syn(p, now)
            self._apply(now, S.RCV_SYN, state=S.LISTEN)
            return
        self.rejections.append(Rejection(now, p, "no-connection", self.state))
        self._reset_for(p, now)

    def _receive_in_syn_sent(self, p, now):
        tcb, flags = self._conn(), p.flags
        ack_ok = "ACK" in flags and p.ack == tcb.snd_nxt
        if "ACK" in flags and not ack_ok:
            if "RST" not in flags:
                self._reset_for(p, now)
            self.rejections.append(Rejection(now, p, "ack-check", self.state))
            return
        if "RST" in flags:
            if ack_ok:
                self.resets_received += 1
                self._notify(now, "reset")
                self._apply(now, S.RCV_RST)
            return
        if "SYN" not in flags:
            return
        self._take_syn(p, now)
        if ack_ok:
            tcb.snd_una = p.ack
            self._progress(now)
            self._apply(now, S.RCV_SYN_ACK)
            self._notify(now, "established")
        else:
            self._apply(now, S.RCV_SYN)  # simultaneous open

    def _receive_synchronized(self, p, now):
        tcb, flags, c = self._conn(), p.flags, self.config
        state = self.state
        # A SYN for a new incarnation may reopen a TIME_WAIT connection (RFC 6191).
        if (
            state == S.TIME_WAIT
            and "SYN" in flags
            and "ACK" not in flags
            and c.accept_syn_in_time_wait
            and self._newer_than_time_wait(p)
        ):
            self.timers.clear()
            self._new_tcb(now)
            self._take_syn(p, now)
            self._apply(now, S.RCV_NEW_SYN, state=S.TIME_WAIT)
            return
        if state == S.SYN_RECEIVED and "SYN" in flags and "ACK" not in flags and p.seq == tcb.irs:
            self._emit(now, "SYN|ACK", tcb.iss, tcb.rcv_nxt, note="retransmission")
            return
        # RFC 7323 PAWS: an older timestamp than the newest seen means an old segment.
        if tcb.ts_ok and p.tsval is not None and "RST" not in flags and seq_lt(p.tsval, tcb.ts_recent):
            self.rejections.append(Rejection(now, p, "paws", state))
            self._reply_to_invalid(now)
            return
        seg_len = p.length + ("SYN" in flags) + ("FIN" in flags)
        if not self._acceptable(p.seq, seg_len):
            if "RST" in flags:
                return
            # A retransmitted FIN in TIME_WAIT is ACKed and restarts the timer (RFC 9293).
            if state == S.TIME_WAIT and "FIN" in flags and (p.seq + p.length + 1) % MOD == tcb.rcv_nxt:
                self._apply(now, S.RCV_FIN)
                return
            self.rejections.append(Rejection(now, p, "sequence-window", state))
            self._reply_to_invalid(now)
            return
        if "RST" in flags:
            # RFC 5961 section 3: only an exact match resets; in-window gets a challenge ACK.
            if p.seq == tcb.rcv_nxt:
                if state == S.TIME_WAIT and c.rfc1337:
                    return
                self.resets_received += 1
                self._notify(now, "reset")
                self._apply(now, S.RCV_RST)
            else:
                self.rejections.append(Rejection(now, p, "rst-check", state))
                self._reply_to_invalid(now)
            return
        if "SYN" in flags:
            self.rejections.append(Rejection(now, p, "syn-check", state))
            self._reply_to_invalid(now)  # RFC 5961 section 4: challenge ACK
            return
        if "ACK" not in flags:
            return
        if state == S.SYN_RECEIVED:
            if not (seq_lt(tcb.snd_una, p.ack) and not seq_lt(tcb.snd_nxt, p.ack)):
                self.rejections.append(Rejection(now, p, "ack-check", state))
                self._reset_for(p, now)
                return
            tcb.snd_una = p.ack
            self._progress(now)
            self._update_ts(p)
            self._apply(now, S.RCV_ACK_OF_SYN)
            self._notify(now, "established")
            state = self.state
        else:
            if seq_lt(tcb.snd_nxt, p.ack):
                self.rejections.append(Rejection(now, p, "ack-check", state))
                self._reply_to_invalid(now)
                return
            if c.ack_check and seq_lt(p.ack, (tcb.snd_una - tcb.max_snd_wnd) % MOD):
                self.rejections.append(Rejection(now, p, "ack-check", state))
                self._reply_to_invalid(now)
                return
            if seq_lt(tcb.snd_una, p.ack):
                tcb.snd_una = p.ack
                self._progress(now)
            self._update_ts(p)
        fin_acked = tcb.fin_seq is not None and tcb.snd_una == (tcb.fin_seq + 1) % MOD
        need_ack = False
        if p.length and state in (S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2):
            off = (p.seq - tcb.rcv_nxt) % MOD
            note = "in order" if off == 0 else "queued out of order"
            if off >= (1 << 31):  # starts before rcv_nxt: keep only the new tail
                note = "overlapping"
            self.deliveries.append(
                Delivery(now, tcb.incarnation, p.incarnation, (p.seq - tcb.irs) % MOD, p.length, note)
            )
            if off == 0 or off >= (1 << 31):
                tcb.rcv_nxt = (p.seq + p.length) % MOD
            need_ack = True
        fin_in_order = "FIN" in flags and (p.seq + p.length) % MOD == tcb.rcv_nxt and not tcb.fin_received
        if fin_in_order:
            tcb.rcv_nxt = (tcb.rcv_nxt + 1) % MOD
            tcb.fin_received = True
            if state == S.FIN_WAIT_1 and fin_acked:
                self._apply(now, S.RCV_FIN_ACK_OF_FIN)
            else:
                if state in S.FIN_OUTSTANDING and fin_acked:
                    self._apply(now, S.RCV_ACK_OF_FIN)
                if state == S.ESTABLISHED:
                    self._notify(now, "eof")
                self._apply(now, S.RCV_FIN)
            return
        if fin_acked and state in S.FIN_OUTSTANDING:
            self._apply(now, S.RCV_ACK_OF_FIN)
        if need_ack:
            self._send_ack(now)

    # ---- helpers ---------------------------------------------------------------------
    def _conn(self) -> TCB:
        """The connection's TCB. Only CLOSED and LISTEN have none, and nothing that needs one
        runs there: a call without one is a bug in the endpoint, named here."""
        tcb = self.tcb
        if tcb is None:
            raise RuntimeError(f"{self.name}: no connection (TCB) in state {self.state}")
        return tcb

    def _acceptable(self, seq, seg_len) -> bool:
        """RFC 9293's segment acceptability test (section 3.10.7.4, four cases)."""
        tcb = self._conn()
        wnd = self.config.rcv_wnd
        off = (seq - tcb.rcv_nxt) % MOD
        if seg_len == 0:
            return off < wnd
        return off < wnd or (seq + seg_len - 1 - tcb.rcv_nxt) % MOD < wnd

    def _newer_than_time_wait(self, p) -> bool:
        tcb = self._conn()
        if tcb.ts_ok and p.tsval is not None:
            return seq_lt(tcb.ts_recent, p.tsval)
        return seq_lt(tcb.rcv_nxt, p.seq)

    def _update_ts(self, p):
        tcb = self._conn()
        if tcb.ts_ok and p.tsval is not None and not seq_lt(p.tsval, tcb.ts_recent):
            tcb.ts_recent = p.tsval

    def _tsval(self, now) -> int:
        return (int(now * self.config.ts_hz) + self.ts_offset) % MOD

    def _isn(self, now) -> int:
        c, k = self.config, self.incarnations - 1
        if k < len(c.isns):
            return c.isns[k] % MOD
        if c.isn_policy == "fixed":
            return c.isn_fixed % MOD
        if c.isn_policy == "clock":
            return (self.isn_secret + int(now * c.isn_clock_rate)) % MOD
        return self.rng.randrange(MOD)

    def _new_tcb(self, now):
        self.incarnations += 1
        tcb = self.tcb = TCB(self.incarnations)
        tcb.iss = self._isn(now)
        tcb.snd_una = tcb.snd_nxt = tcb.iss
        tcb.rto = self.config.rto

    def _take_syn(self, p, now):
        tcb = self._conn()
        tcb.irs = p.seq
        tcb.rcv_nxt = (p.seq + 1) % MOD
        tcb.peer_incarnation = p.incarnation
        if self.config.timestamps and p.tsval is not None:
            tcb.ts_ok = True
            tcb.ts_recent = p.tsval

    def _progress(self, now):
        """The peer acknowledged new data: drop what it covers, reset the backoff."""
        tcb = self._conn()
        tcb.unacked = [
            u for u in tcb.unacked if seq_lt(tcb.snd_una, (u[1] + u[2] + (u[0] != "PSH|ACK")) % MOD)
        ]
        tcb.retries = 0
        tcb.rto = self.config.rto
        if tcb.unacked:
            self.timers["rto"] = now + tcb.rto
        else:
            self.timers.pop("rto", None)

    def _queue_for_retransmission(self, now, flags, seq, length):
        tcb = self._conn()
        tcb.unacked.append((flags, seq, length))
        self.timers.setdefault("rto", now + tcb.rto)

    def _emit(self, now, flags, seq, ack, length=0, note=""):
        tcb = self._conn()
        ts_on = self.config.timestamps and (tcb.ts_ok or "SYN" in flags and "ACK" not in flags)
        if "SYN" in flags and "ACK" in flags:
            ts_on = tcb.ts_ok
        self._out.append(
            Packet(
                self.name,
                self.peer,
                flags,
                seq % MOD,
                ack % MOD,
                length,
                tsval=self._tsval(now) if ts_on else None,
                tsecr=tcb.ts_recent if ts_on and tcb.ts_ok else None,
                rel_seq=(seq - tcb.iss) % MOD,
                rel_ack=(ack - tcb.irs) % MOD if "ACK" in flags else 0,
                note=note,
                incarnation=tcb.incarnation,
            )
        )

    def _send_ack(self, now):
        tcb = self._conn()
        self.timers.pop("delack", None)
        self._emit(now, "ACK", tcb.snd_nxt, tcb.rcv_nxt)

    def _reply_to_invalid(self, now):
        """ACK an unacceptable segment, at most once per ``invalid_ratelimit`` seconds,
        so that two endpoints that disagree cannot ACK each other forever."""
        tcb = self._conn()
        if now - tcb.last_invalid_reply >= self.config.invalid_ratelimit:
            tcb.last_invalid_reply = now
            self._send_ack(now)

    def _reset_for(self, p, now):
        """RFC 9293 3.10.7.1: answer a segment that belongs to no connection with a reset."""
        flags = p.flags
        if "ACK" in flags:
            out = Packet(self.name, p.src, "RST", p.ack, 0, rel_seq=p.rel_ack, incarnation=p.incarnation)
        else:
            seg_len = p.length + ("SYN" in flags) + ("FIN" in flags)
            out = Packet(
                self.name,
                p.src,
                "RST|ACK",
                0,
                (p.seq + seg_len) % MOD,
                rel_ack=(p.rel_seq + seg_len) % MOD,
                incarnation=p.incarnation,
            )
        self._out.append(out)

    def _apply(self, now, event, state=None):
        state = state or self.state
        row = _TRANSITIONS.get((state, event))
        if row is None:
            raise S.TransitionError(state, event, self.name)
        nxt, actions = row
        self.transitions.append(Transition(now, self.name, state, event, nxt))
        for action in actions:
            if action == S.SEND_SYN:
                tcb = self._conn()
                self._emit(now, "SYN", tcb.iss, 0)
                self._queue_for_retransmission(now, "SYN", tcb.iss, 0)
                tcb.snd_nxt = (tcb.iss + 1) % MOD
            elif action == S.SEND_SYN_ACK:
                tcb = self._conn()
                self._emit(now, "SYN|ACK", tcb.iss, tcb.rcv_nxt)
                if not tcb.unacked:
                    self._queue_for_retransmission(now, "SYN|ACK", tcb.iss, 0)
                tcb.snd_nxt = (tcb.iss + 1) % MOD
            elif action == S.SEND_ACK:
                if event == S.RCV_FIN and state == S.ESTABLISHED and self.config.merge_fin_ack:
                    self.timers["delack"] = now + self.config.delayed_ack
                else:
                    self._send_ack(now)
            elif action == S.SEND_FIN:
                self.timers.pop("delack", None)  # the FIN carries the pending ACK
                tcb = self._conn()
                tcb.fin_seq = tcb.snd_nxt
                self._emit(now, "FIN|ACK", tcb.snd_nxt, tcb.rcv_nxt)
                self._queue_for_retransmission(now, "FIN|ACK", tcb.snd_nxt, 0)
                tcb.snd_nxt = (tcb.snd_nxt + 1) % MOD
            elif action == S.START_TIME_WAIT:
                self.timers.pop("rto", None)
                self.timers.pop("fin_wait_2", None)
                self.timers["time_wait"] = now + self.config.time_wait
            elif action == S.DELETE_TCB:
                self.timers.clear()
                self.tcb = None
        if nxt == S.FIN_WAIT_2 and self.config.fin_wait_2_timeout is not None:
            self.timers["fin_wait_2"] = now + self.config.fin_wait_2_timeout
        if nxt == S.CLOSED and state != S.CLOSED:
            self._notify(now, "closed")
        if nxt != state or not self.timeline:
            self.timeline.append(StateChange(now, self.name, nxt))
        self.state = nxt  # CLOSED with a listener: the next SYN starts from LISTEN

    def _notify(self, now, what):
        self.notifications.append((now, what))
        self.history.append((now, what))

    def _flush(self) -> list:
        out, self._out = self._out, []
        return out


def _by_deadline(item):
    return item[1]
