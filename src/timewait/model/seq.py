"""32-bit sequence-number arithmetic (RFC 9293 section 3.4; ``before()``/``after()`` of
include/net/tcp.h). The comparisons take ints or numpy arrays alike."""

from __future__ import annotations

MOD = 1 << 32
HALF = 1 << 31


def seq_lt(a, b):
    """``a`` before ``b`` in sequence space."""
    d = (b - a) % MOD
    return (d > 0) & (d < HALF)


def seq_gt(a, b):
    """``a`` after ``b`` in sequence space."""
    return seq_lt(b, a)


def seq_diff(a: int, b: int) -> int:
    """``a - b`` in sequence space, between -2**31 and 2**31 - 1."""
    d = (a - b) % MOD
    return d - MOD if d >= HALF else d
