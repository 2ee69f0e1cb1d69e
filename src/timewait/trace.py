"""One segment type for kernel captures and for the model.

A :class:`Segment` is what the sequence-diagram code draws and what the tests compare,
whether it was captured on a namespace's loopback or produced by the simulator.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Optional

# Order used when writing flags as text: "SYN", "SYN|ACK", "FIN|ACK", "RST", "PSH|ACK".
FLAG_ORDER = ("SYN", "FIN", "RST", "PSH", "ACK")


def flags_text(flags: Iterable[str]) -> str:
    """Flags in a fixed, readable order joined by ``|`` (``{"ACK", "FIN"}`` -> ``"FIN|ACK"``)."""
    present = set(flags)
    unknown = present - set(FLAG_ORDER) - {"URG", "ECE", "CWR"}
    if unknown:
        raise ValueError(f"flags: unknown TCP flag(s) {sorted(unknown)}; valid: {FLAG_ORDER}")
    return "|".join(f for f in FLAG_ORDER if f in present)


@dataclass(frozen=True)
class Segment:
    """One TCP segment as it travelled, from ``src`` to ``dst``.

    ``src``/``dst`` are endpoint names ("client", "server") rather than addresses, so that
    a kernel capture and a model run of the same scenario compare equal. ``seq``/``ack`` are
    relative to the sending and receiving side's ISN (``seq_abs``/``ack_abs`` keep the wire
    values). ``t`` is seconds since the first segment of the trace.
    """

    t: float
    src: str
    dst: str
    flags: str  # as produced by flags_text, e.g. "FIN|ACK"
    seq: int
    ack: int
    length: int = 0
    seq_abs: Optional[int] = None
    ack_abs: Optional[int] = None
    tsval: Optional[int] = None
    tsecr: Optional[int] = None
    note: str = ""  # e.g. "dropped", "retransmission", "old duplicate"
    sport: Optional[int] = None
    dport: Optional[int] = None
    link: str = ""  # a topology's link it was captured on ("router:eth1"); "" on loopback
    saddr: Optional[str] = None  # source and destination addresses as captured
    daddr: Optional[str] = None
    window: Optional[int] = None  # the window field as captured (unscaled); None in the model
    tcp_options: str = ""  # the TCP options as captured, hex; "" in the model

    @property
    def flag_set(self) -> frozenset:
        return frozenset(self.flags.split("|")) if self.flags else frozenset()

    def has(self, flag: str) -> bool:
        return flag in self.flag_set

    def label(self) -> str:
        """Short text used on diagrams: ``FIN|ACK seq=1 ack=6 len=0``."""
        text = f"{self.flags} seq={self.seq} ack={self.ack}"
        if self.length:
            text += f" len={self.length}"
        return text

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Trace:
    """An ordered list of segments between two named endpoints."""

    segments: list = field(default_factory=list)
    endpoints: tuple = ("client", "server")

    def __iter__(self):
        return iter(self.segments)

    def __len__(self):
        return len(self.segments)

    def __getitem__(self, i):
        return self.segments[i]

    def flag_sequence(self, include_dropped: bool = True) -> list:
        """``[(src, flags), ...]``: the shape of an exchange, free of ISNs and timings."""
        return [(s.src, s.flags) for s in self.segments if include_dropped or s.note != "dropped"]

    def to_dicts(self) -> list:
        return [s.to_dict() for s in self.segments]

    @classmethod
    def from_dicts(cls, rows: list, endpoints=("client", "server")) -> Trace:
        return cls([Segment(**r) for r in rows], tuple(endpoints))

    def table(self, times: bool = False) -> str:
        """A fixed-width text table, one line per segment; times are left out unless asked,
        so that the text is the same on every run."""
        lines = []
        for i, s in enumerate(self.segments, 1):
            arrow = f"{s.src:>6} -> {s.dst:<6}"
            t = f"{s.t:8.3f}s " if times else ""
            note = f"  ({s.note})" if s.note else ""
            lines.append(f"{i:2d}. {t}{arrow} {s.label()}{note}")
        return "\n".join(lines)
