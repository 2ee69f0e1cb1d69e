"""Fault rules: drop or hold the segments that match, with nftables inside the namespace.

A rule lives in the namespace's own ruleset (table ``inet timewait``) in the *prerouting*
hook, so the packet capture on ``lo`` has already seen a segment when the rule drops it:
the trace shows it as lost, and a held segment's bytes are there to deliver later.
``count`` uses nftables' per-rule ``numgen inc`` counter, so exactly the first ``count``
matching segments are dropped and the rest pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

TCP_FLAG_NAMES = ("FIN", "SYN", "RST", "PSH", "ACK")
TABLE = "timewait"
CHAIN = "faults"
SETUP_RULESET = f"""
table inet {TABLE} {{
  chain {CHAIN} {{
    type filter hook prerouting priority raw; policy accept;
  }}
}}
"""


@dataclass
class Match:
    """Which segments a rule applies to. ``flags`` is exact over FIN/SYN/RST/PSH/ACK:
    ``"ACK"`` matches pure ACKs only, ``"FIN|ACK"`` matches FIN|ACK but not FIN|PSH|ACK."""

    src_port: Optional[int] = None
    dst_port: Optional[int] = None
    flags: Optional[str] = None

    def __post_init__(self):
        for name in ("src_port", "dst_port"):
            value = getattr(self, name)
            if value is not None and not (1 <= value <= 65535):
                raise ValueError(f"{name}: must be between 1 and 65535, got {value}")
        if self.flags is not None:
            bad = set(self.flags.split("|")) - set(TCP_FLAG_NAMES)
            if bad or not self.flags:
                raise ValueError(f"flags: must be '|'-joined names from {TCP_FLAG_NAMES}, got {self.flags!r}")

    def nft(self) -> str:
        parts = ["meta l4proto tcp"]
        if self.src_port is not None:
            parts.append(f"tcp sport {self.src_port}")
        if self.dst_port is not None:
            parts.append(f"tcp dport {self.dst_port}")
        if self.flags is not None:
            want = "|".join(f.lower() for f in self.flags.split("|"))
            mask = "|".join(f.lower() for f in TCP_FLAG_NAMES)
            parts.append(f"tcp flags & ({mask}) == ({want})")
        return " ".join(parts)

    def matches(self, view) -> bool:
        """The same test in Python, applied to a captured :class:`~timewait.capture.TcpView`."""
        if self.src_port is not None and view.src[1] != self.src_port:
            return False
        if self.dst_port is not None and view.dst[1] != self.dst_port:
            return False
        if self.flags is not None:
            have = set(view.flags.split("|")) & set(TCP_FLAG_NAMES)
            return have == set(self.flags.split("|"))
        return True


@dataclass
class Rule:
    """An installed drop rule. ``note`` labels its segments in traces ("dropped", "held")."""

    match: Match
    count: Optional[int]
    note: str
    comment: str
    added_at: float
    removed_at: Optional[float] = None
    handle: Optional[int] = None
    dropped: int = 0
    frames: list = field(default_factory=list)

    def nft(self) -> str:
        limit = f" numgen inc mod 1000000000 < {self.count}" if self.count is not None else ""
        return f'{self.match.nft()}{limit} counter drop comment "{self.comment}"'

    def active_at(self, t: float) -> bool:
        return t >= self.added_at and (self.removed_at is None or t <= self.removed_at)
