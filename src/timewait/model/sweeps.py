"""Monte Carlo sweeps, vectorised with numpy, or in plain Python where numpy is missing.

Each sweep draws its trials' random inputs as arrays and decides every trial's outcome
with the same rules, checks and event times the event-driven scenarios use
(:func:`timewait.model.scenarios.lost_final_ack`,
:func:`~timewait.model.scenarios.old_duplicate` and
:func:`~timewait.model.scenarios.provoked_reset`, with a fixed network delay); the tests
run both on the same draws and require the same outcome trial by trial.

An old-duplicate trial is described once: :class:`Reincarnation` computes its conditions
(from numbers or numpy arrays alike) and a decision tree (:data:`DUPLICATE_TRIAL`,
:data:`RESET_TRIAL`) turns them into an outcome code. The numpy back end evaluates a tree as
nested ``np.where`` over all trials at once; ``backend="python"`` walks it trial by trial,
with draws from the standard library's ``random`` (seeded, so a seed still gives the same
result, though not numpy's): that is how the sweeps run in a web page's Pyodide, where the
course site can serve no numpy. A trial takes 1-2 us here against numpy's 0.1 us, and
several times that in a browser, so callers there ask for fewer trials, and the intervals
say so. The tests require both backends to give the same outcome on the same draws.

Estimates come with Wilson score intervals (95 % by default).
"""

from __future__ import annotations

import functools
import json
import math
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import product, repeat
from typing import Optional

try:
    import numpy as np
except ImportError:  # Pyodide in a web page: the sweeps run with backend="python"
    np = None  # type: ignore[assignment]

from .endpoint import ISN_POLICIES, MOD, RFC793_CLOCK_RATE
from .seq import seq_lt

RESET_OUTCOMES = ("clean-close", "peer-reset", "gave-up")
DUPLICATE_CODES = (
    "accepted",
    "time-wait",
    "no-connection",
    "same-incarnation",
    "paws",
    "sequence-window",
    "ack-check",
)
# provoked-reset: the old data accepted, the late reset accepted, the old data rejected
# without provoking a reset (by the defence named), or the late reset discarded ("reset-...").
PROVOKED_CODES = (
    "accepted",
    "reset",
    "same-incarnation",
    "paws",
    "sequence-window",
    "ack-check",
    "reset-time-wait",
    "reset-no-connection",
    "reset-syn-sent",
    "reset-rst-check",
    "reset-sequence-window",
)
BACKENDS = ("numpy", "python")


def _backend(backend) -> str:
    """``backend`` checked; None means numpy where it is installed, else plain Python."""
    if backend is None:
        return "python" if np is None else "numpy"
    if backend not in BACKENDS:
        raise ValueError(f"backend: must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "numpy" and np is None:
        raise ValueError("backend: numpy is not installed here; use backend='python'")
    return backend


def _rng(backend: str, seed: int):
    return np.random.default_rng(seed) if backend == "numpy" else random.Random(seed)


def wilson_interval(successes, trials, z: float = 1.959963984540054) -> tuple:
    """Wilson score interval for a binomial proportion (works at 0 and at ``trials``)."""
    if trials <= 0:
        raise ValueError(f"trials: must be > 0, got {trials}")
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


@dataclass
class SweepResult:
    """One row per parameter combination: the inputs, ``hits`` out of ``trials``, the
    estimate ``p`` and its interval ``[low, high]``."""

    name: str
    rows: list = field(default_factory=list)
    fixed: dict = field(default_factory=dict)
    seconds: float = 0.0  # wall time spent simulating

    @property
    def trials_total(self) -> int:
        return sum(r["trials"] for r in self.rows)

    def column(self, key: str) -> list:
        return [r[key] for r in self.rows]

    def to_json(self, indent: int = 2) -> str:
        return json.dumps({"name": self.name, "fixed": self.fixed, "rows": self.rows}, indent=indent)

    def table(self) -> str:
        if not self.rows:
            return "(no rows)"
        keys = [k for k in self.rows[0] if k not in ("low", "high")]
        lines = ["  ".join(f"{k:>15}" for k in keys) + "  95% interval"]
        for r in self.rows:
            cells = []
            for k in keys:
                v = r[k]
                cells.append(f"{v:>15.6g}" if isinstance(v, float) else f"{v!s:>15}")
            lines.append("  ".join(cells) + f"  [{r['low']:.3g}, {r['high']:.3g}]")
        return "\n".join(lines)


def _as_tuple(x):
    if isinstance(x, (list, tuple)) or (np is not None and isinstance(x, np.ndarray)):
        return tuple(x)
    return (x,)


def _probability(name, value):
    if not (0.0 <= value <= 1.0):
        raise ValueError(f"{name}: must be between 0 and 1, got {value}")


def _trials(trials):
    whole = isinstance(trials, int) or (np is not None and isinstance(trials, np.integer))
    if not (whole and trials >= 1):
        raise ValueError(f"trials: must be a whole number >= 1, got {trials}")


# ---- P(peer sees a reset) ---------------------------------------------------------------
def reset_outcome_by_losses(
    time_wait: float, rto: float = 0.2, max_rto: float = 120.0, max_retries: int = 8, delay: float = 0.001
):
    """Outcome code (index into :data:`RESET_OUTCOMES`) for each number ``k`` = 0..R+1 of
    final ACKs lost in a row, where R is ``max_retries`` (a numpy array, or a list where
    numpy is missing).

    The passive closer sends its FIN at s0 and retransmits after rto, 2 rto, 4 rto...
    The closer, in TIME_WAIT, ACKs each FIN and restarts its timer. When ACK j is lost,
    FIN j+1 arrives ``gap_j`` later: if TIME_WAIT has run out by then, the answer is a reset.
    """
    if rto <= 2 * delay:
        raise ValueError(f"rto: must exceed the round trip (2 x delay = {2 * delay}), got {rto}")
    if time_wait < 0:
        raise ValueError(f"time_wait: must be >= 0, got {time_wait}")
    # Event times computed with the same float operations as the event engine.
    s = ((0.0 + delay) + delay) + delay  # LAST_ACK entered, first FIN sent
    cur_rto = rto
    arrivals, sends = [], [s]
    for _ in range(max_retries):
        s = s + cur_rto
        cur_rto = min(cur_rto * 2, max_rto)
        sends.append(s)
    arrivals = [x + delay for x in sends]
    codes = [0] * (max_retries + 2)
    first_reset = max_retries  # first j whose lost ACK lets TIME_WAIT expire before FIN j+1
    for j in range(max_retries):
        if arrivals[j] + time_wait <= arrivals[j + 1]:
            first_reset = j
            break
    for k in range(max_retries + 2):
        if k <= first_reset and k <= max_retries:
            codes[k] = 0
        elif first_reset < max_retries:
            codes[k] = 1
        else:
            codes[k] = 2
    return codes if np is None else np.array(codes, dtype=np.int8)


def final_ack_losses(n: int, loss: float, max_retries: int, rng):
    """How many final ACKs in a row are lost, per trial (capped at ``max_retries + 1``): an
    array from a numpy generator, a list from a ``random.Random``, which inverts the
    geometric distribution's CDF (``P(k >= j) = loss ** j``) with one uniform draw a trial."""
    _probability("final_ack_loss", loss)
    if isinstance(rng, random.Random):
        cap = max_retries + 1
        if loss >= 1.0 or loss <= 0.0:
            return [cap if loss >= 1.0 else 0] * n
        log_loss, log, draw = math.log(loss), math.log, rng.random
        return [min(int(log(1.0 - draw()) / log_loss), cap) for _ in range(n)]
    if loss >= 1.0:
        return np.full(n, max_retries + 1, dtype=np.int64)
    if loss <= 0.0:
        return np.zeros(n, dtype=np.int64)
    return np.minimum(rng.geometric(1.0 - loss, size=n) - 1, max_retries + 1)


def reset_sweep(
    final_ack_loss=(0.0, 0.1, 0.3, 0.5, 0.9),
    *,
    time_wait_msl=(0.0, 0.01, 1.0, 2.0),
    trials: int = 100_000,
    msl: float = 30.0,
    rto: float = 0.2,
    max_rto: float = 120.0,
    max_retries: int = 8,
    delay: float = 0.001,
    seed: int = 0,
    backend: Optional[str] = None,
) -> SweepResult:
    """P(the passive closer sees a reset) against final-ACK loss rate and TIME_WAIT length
    (in MSLs). Rows also give P(gave up). ``backend``: see the module's description."""
    import time as _time

    _trials(trials)
    backend = _backend(backend)
    if msl <= 0:
        raise ValueError(f"msl: must be > 0 seconds, got {msl}")
    rng = _rng(backend, seed)
    result = SweepResult(
        "reset",
        fixed=dict(msl=msl, rto=rto, max_rto=max_rto, max_retries=max_retries, delay=delay, seed=seed),
    )
    started = _time.perf_counter()
    for loss, tw in product(_as_tuple(final_ack_loss), _as_tuple(time_wait_msl)):
        if tw < 0:
            raise ValueError(f"time_wait_msl: must be >= 0, got {tw}")
        codes = reset_outcome_by_losses(tw * msl, rto, max_rto, max_retries, delay)
        k = final_ack_losses(trials, float(loss), max_retries, rng)
        if backend == "numpy":
            outcome = codes[k]
            resets = int(np.count_nonzero(outcome == 1))
            gave_up = int(np.count_nonzero(outcome == 2))
        else:
            by_code: Counter = Counter()
            for losses, count in Counter(k).items():
                by_code[codes[losses]] += count
            resets, gave_up = by_code[1], by_code[2]
        low, high = wilson_interval(resets, trials)
        result.rows.append(
            dict(
                final_ack_loss=float(loss),
                time_wait_msl=float(tw),
                trials=trials,
                hits=resets,
                p=resets / trials,
                low=low,
                high=high,
                gave_up=gave_up / trials,
            )
        )
    result.seconds = _time.perf_counter() - started
    return result


# ---- P(old duplicate corrupts a new incarnation) ----------------------------------------
@dataclass
class DuplicateDraws:
    """The random inputs of old-duplicate trials (one entry per trial): numpy arrays, or
    lists (of ISN pairs) for the plain-Python backend."""

    hold: np.ndarray
    client_isns: np.ndarray  # shape (n, 2): incarnation 1, 2
    server_isns: np.ndarray


@dataclass
class ProvokedDraws:
    """The random inputs of provoked-reset trials (one entry per trial): numpy arrays, or
    lists (of ISN pairs) for the plain-Python backend."""

    hold: np.ndarray  # the old request's time in the network
    answer_hold: np.ndarray  # the time in the network of the reset it provokes
    client_isns: np.ndarray  # shape (n, 2): incarnation 1, 2 (random ISNs only)
    server_isns: np.ndarray


def _draw(kind, backend: str, rng, n: int, isn: str, msl: float):
    """``kind``'s draws for n trials: its holds (each uniform on (0, MSL]), then, with
    random ISNs, the client's and the server's ISN pairs; numpy arrays, or lists from a
    ``random.Random`` (the same order of draws, not the same numbers)."""
    holds = 2 if kind is ProvokedDraws else 1
    if backend == "numpy":
        out = [msl * (1.0 - rng.random(n)) for _ in range(holds)]
        pairs = lambda: rng.integers(0, MOD, size=(n, 2), dtype=np.int64)  # noqa: E731
    else:
        draw, bits = rng.random, rng.getrandbits
        out = [[msl * (1.0 - draw()) for _ in range(n)] for _ in range(holds)]
        pairs = lambda: [(bits(32), bits(32)) for _ in range(n)]  # noqa: E731
    return kind(*out, pairs(), pairs()) if isn == "random" else kind(*out, None, None)


@dataclass(frozen=True)
class Reincarnation:
    """The exchange the old-duplicate trials decide (see scenarios.old_duplicate, with a
    fixed network delay): connection 1 closes, the client's TIME_WAIT lasts ``time_wait``
    seconds, and ``reconnect_delay`` later a new incarnation of the 4-tuple begins. Its
    conditions hold for one trial (numbers) or for many (numpy arrays) alike."""

    isn: str = "clock"
    time_wait: float = 60.0
    reconnect_delay: float = 0.0
    msl: float = 30.0
    delay: float = 0.001
    timestamps: bool = False
    ack_check: bool = True
    request_bytes: int = 100
    old_offset: int = 0
    rcv_wnd: int = 65535
    isn_fixed: int = 1000
    isn_clock_rate: float = RFC793_CLOCK_RATE
    ts_hz: float = 1000.0

    def __post_init__(self) -> None:
        if self.isn not in ISN_POLICIES:
            raise ValueError(f"isn: must be one of {', '.join(ISN_POLICIES)}, got {self.isn!r}")
        for name, v in (("time_wait", self.time_wait), ("reconnect_delay", self.reconnect_delay)):
            if v < 0:
                raise ValueError(f"{name}: must be >= 0, got {v}")
        if not (0 < self.delay <= self.msl):
            raise ValueError(f"delay: must be in (0, MSL={self.msl}], got {self.delay}")

    @functools.cached_property
    def times(self) -> dict:
        """Event times, with the event engine's float operations."""
        t = [0.0]
        for _ in range(7):
            t.append(t[-1] + self.delay)
        tw_end = t[6] + self.time_wait
        t2 = tw_end + self.reconnect_delay  # new SYN
        syn_at_server = t2 + self.delay
        return dict(
            t=t,
            sent=t[2],  # the duplicated request leaves with the handshake's last ACK
            old_gone=t[7],  # server's connection 1 ends when the final ACK arrives
            tw_end=tw_end,
            t2=t2,
            syn_at_server=syn_at_server,
            established_at_client=syn_at_server + self.delay,  # the SYN,ACK arrives
            established_at_server=(syn_at_server + self.delay) + self.delay,
        )

    def isns(self, whole) -> tuple:
        """ISNs of (client 1, client 2, server 1, server 2) of the fixed and clock policies,
        of type ``whole`` (np.int64, or int for the plain-Python backend)."""
        if self.isn == "fixed":
            x = whole(self.isn_fixed % MOD)
            return x, x, x, x
        t, rate = self.times, self.isn_clock_rate  # RFC 6528, one secret for both incarnations
        return (
            whole(0),
            whole(int(t["t2"] * rate) % MOD),
            whole(int(t["t"][1] * rate) % MOD),
            whole(int(t["syn_at_server"] * rate) % MOD),
        )

    def checks(self, c1, c2, s1, s2) -> dict:
        """What decides the old request's fate in the new incarnation, from the
        incarnations' ISNs: in the new window, its ACK the one SYN-RECEIVED expects, its ACK
        failing ESTABLISHED's check, PAWS dropping it in SYN-RECEIVED or in ESTABLISHED."""
        t, wnd, hz = self.times, self.rcv_wnd, self.ts_hz
        seq = (c1 + 1 + self.old_offset) % MOD
        ack = (s1 + 1) % MOD
        rcv_nxt = (c2 + 1) % MOD
        snd_nxt = (s2 + 1) % MOD
        est_ack_bad = seq_lt(snd_nxt, ack)
        if self.ack_check:
            est_ack_bad = est_ack_bad | seq_lt(ack, (snd_nxt - 65535) % MOD)
        dup_ts = int(t["sent"] * hz)
        return dict(
            in_window=(((seq - rcv_nxt) % MOD) < wnd)
            | (((seq + self.request_bytes - 1 - rcv_nxt) % MOD) < wnd),
            syn_rcvd_ack_ok=ack == snd_nxt,
            est_ack_bad=est_ack_bad,
            paws_syn_rcvd=self.timestamps and dup_ts < int(t["t2"] * hz),
            paws_est=self.timestamps and dup_ts < int(t["established_at_client"] * hz),
        )

    @functools.cached_property
    def _limits(self) -> tuple:
        t = self.times
        return (
            t["syn_at_server"],
            t["old_gone"],
            t["tw_end"],
            t["established_at_server"],
            t["t2"],
            t["established_at_client"],
        )

    def arrival(self, arrival, cond: dict) -> dict:
        """``cond`` with when the old request arrives (``arrival``) against the exchange."""
        new_syn, old_gone, tw_end, established, _, _ = self._limits
        cond["before_new_syn"] = arrival < new_syn
        cond["before_old_gone"] = arrival < old_gone
        cond["before_tw_end"] = arrival < tw_end
        cond["before_established"] = arrival < established
        return cond

    def provokes(self, code, arrival):
        """Whether the old request, arriving at ``arrival`` with duplicate code ``code``,
        provokes a reset from the server: it found no connection there, or failed the ACK
        check in SYN-RECEIVED."""
        new_syn, _, _, established, _, _ = self._limits
        in_syn_rcvd = (arrival >= new_syn) & (arrival < established)
        return (code == 1) | (code == 2) | ((code == 6) & in_syn_rcvd)

    def reset(self, reset_arrival, s1, s2, cond: dict) -> dict:
        """``cond`` with when the provoked reset reaches the client (``reset_arrival``), and
        where its sequence number (the request's ACK number, from server ISN ``s1``) falls
        against the new incarnation's rcv_nxt (from ``s2``)."""
        _, _, tw_end, _, t2, client_established = self._limits
        cond["reset_before_tw_end"] = reset_arrival < tw_end
        cond["reset_before_new_syn"] = reset_arrival < t2
        cond["reset_before_established"] = reset_arrival < client_established
        off = ((s1 + 1) % MOD - (s2 + 1)) % MOD
        cond["reset_in_sequence"] = off == 0
        cond["reset_in_window"] = off < self.rcv_wnd
        return cond


# Each trial's outcome as a decision tree over the conditions above: a node is (condition,
# if true, if false), a leaf an index into DUPLICATE_CODES or PROVOKED_CODES. The numpy back
# end turns a tree into nested np.where, the plain-Python one walks it for each trial.
DUPLICATE_TRIAL = (
    "before_new_syn",
    ("before_old_gone", 3, ("before_tw_end", 1, 2)),  # same-incarnation, time-wait, no-connection
    (
        "before_established",  # SYN-RECEIVED: paws, sequence-window, accepted or ack-check
        ("paws_syn_rcvd", 4, ("in_window", ("syn_rcvd_ack_ok", 0, 6), 5)),
        ("paws_est", 4, ("in_window", ("est_ack_bad", 6, 0), 5)),  # ESTABLISHED
    ),
)
RESET_TRIAL = (  # the fate of the reset a request provoked (PROVOKED_CODES)
    "reset_before_tw_end",
    6,  # reset-time-wait
    (
        "reset_before_new_syn",
        7,  # reset-no-connection
        (
            "reset_before_established",
            8,  # reset-syn-sent
            (
                "reset_in_sequence",
                1,  # reset: the late reset accepted
                ("reset_in_window", 9, 10),  # reset-rst-check, reset-sequence-window
            ),
        ),
    ),
)
# A DUPLICATE_CODES index as a PROVOKED_CODES index, when the request provoked no reset.
_OWN_FATE = (0, -1, -1, 2, 3, 4, 5)
_OWN_FATE_ARRAY = None if np is None else np.array(_OWN_FATE, dtype=np.int8)


def _decide(tree, cond: dict) -> int:
    """One trial's outcome: ``tree`` walked with the trial's conditions ``cond``."""
    while type(tree) is tuple:
        tree = tree[1] if cond[tree[0]] else tree[2]
    return tree


def _vectorised(tree, cond: dict):
    """Every trial's outcome at once: ``tree`` as nested np.where over arrays ``cond``."""
    if type(tree) is not tuple:
        return tree
    name, yes, no = tree
    return np.where(cond[name], _vectorised(yes, cond), _vectorised(no, cond))


def _duplicate_codes(ex: Reincarnation, draws, backend: str):
    """Each trial's :data:`DUPLICATE_CODES` index."""
    sent = ex.times["sent"]
    if backend == "numpy":
        if ex.isn == "random":
            c, s = draws.client_isns, draws.server_isns
            cond = ex.checks(c[:, 0], c[:, 1], s[:, 0], s[:, 1])
        else:
            cond = ex.checks(*ex.isns(np.int64))
        arrival = sent + np.asarray(draws.hold, dtype=float)
        return _vectorised(DUPLICATE_TRIAL, ex.arrival(arrival, cond)).astype(np.int8)
    if ex.isn == "random":
        pairs = zip(draws.client_isns, draws.server_isns, strict=True)
        checks: Iterable = (ex.checks(c1, c2, s1, s2) for (c1, c2), (s1, s2) in pairs)
    else:
        checks = repeat(ex.checks(*ex.isns(int)))  # the same for every trial
    trials = zip(draws.hold, checks, strict=False)  # repeat() never ends
    return [_decide(DUPLICATE_TRIAL, ex.arrival(sent + h, cond)) for h, cond in trials]


def _provoked_codes(ex: Reincarnation, draws, backend: str):
    """Each trial's :data:`PROVOKED_CODES` index."""
    duplicate = _duplicate_codes(ex, draws, backend)
    sent = ex.times["sent"]
    if backend == "numpy":
        if ex.isn == "random":
            s1, s2 = draws.server_isns[:, 0], draws.server_isns[:, 1]
        else:
            s1, s2 = ex.isns(np.int64)[2:]
        arrival = sent + np.asarray(draws.hold, dtype=float)
        reset = ex.reset(arrival + np.asarray(draws.answer_hold, dtype=float), s1, s2, {})
        own = _OWN_FATE_ARRAY[duplicate]
        return np.where(ex.provokes(duplicate, arrival), _vectorised(RESET_TRIAL, reset), own).astype(np.int8)
    servers = draws.server_isns if ex.isn == "random" else repeat(ex.isns(int)[2:])
    trials = zip(duplicate, draws.hold, draws.answer_hold, servers, strict=False)  # repeat() never ends
    codes: list = []
    cond: dict = {}  # one trial's conditions, filled anew for each
    for code, hold, answer_hold, (s1, s2) in trials:
        arrival = sent + hold
        if ex.provokes(code, arrival):
            codes.append(_decide(RESET_TRIAL, ex.reset(arrival + answer_hold, s1, s2, cond)))
        else:
            codes.append(_OWN_FATE[code])
    return codes


def old_duplicate_trials(
    n: int,
    isn: str = "clock",
    time_wait: float = 60.0,
    reconnect_delay: float = 0.0,
    *,
    rng=None,
    draws: Optional[DuplicateDraws] = None,
    backend: Optional[str] = None,
    **rules,
):
    """Outcome code per trial (index into :data:`DUPLICATE_CODES`; 0 means the old bytes
    were accepted) and the draws used. Holds are uniform on (0, MSL]. ``rules``: the other
    fields of :class:`Reincarnation`. With ``backend="python"`` the codes are a list and
    ``rng`` a ``random.Random``."""
    backend = _backend(backend)
    ex = Reincarnation(isn, time_wait, reconnect_delay, **rules)
    rng = rng if rng is not None else _rng(backend, 0)
    draws = draws or _draw(DuplicateDraws, backend, rng, n, isn, ex.msl)
    return _duplicate_codes(ex, draws, backend), draws


def provoked_reset_trials(
    n: int,
    isn: str = "clock",
    time_wait: float = 60.0,
    reconnect_delay: float = 0.0,
    *,
    rng=None,
    draws: Optional[ProvokedDraws] = None,
    backend: Optional[str] = None,
    **rules,
):
    """Outcome code per trial (index into :data:`PROVOKED_CODES`) and the draws used
    (``rules`` and ``backend`` as in old_duplicate_trials).

    The old request is judged as in :func:`old_duplicate_trials`. When it reaches the server
    with no connection there (or fails the ACK check in SYN-RECEIVED), the server answers
    with a reset whose sequence number is the request's ACK number; the network keeps that
    reset ``answer_hold`` seconds. It reaches the client in TIME_WAIT (behind the window:
    dropped), with no connection, in SYN-SENT (a reset without ACK: ignored) or in the idle
    new incarnation, where RFC 5961 lets only the exact next sequence number reset it.
    Both holds are uniform on (0, MSL]."""
    msl = rules.get("msl", Reincarnation.msl)
    if not (msl > 0):
        raise ValueError(f"msl: must be > 0 seconds, got {msl}")
    _trials(n)
    backend = _backend(backend)
    ex = Reincarnation(isn, time_wait, reconnect_delay, **rules)
    rng = rng if rng is not None else _rng(backend, 0)
    draws = draws or _draw(ProvokedDraws, backend, rng, n, isn, msl)
    return _provoked_codes(ex, draws, backend), draws


def _grid_sweep(
    name: str,
    codes: tuple,
    n_hit_codes: int,
    fixed: dict,
    isn,
    time_wait_msl,
    reconnect_delay,
    trials: int,
    run_trials,
    parts=None,
    backend: str = "numpy",
) -> SweepResult:
    """One row per (ISN policy, TIME_WAIT length in MSLs, reconnect delay): the trials'
    outcome codes counted, the first ``n_hit_codes`` of ``codes`` being failures (``hits``,
    with a Wilson interval), ``parts(counts)`` adding columns, and each remaining code's
    count as ``by_<code>``. ``run_trials`` (old_duplicate_trials or provoked_reset_trials)
    gives the codes with the rules in ``fixed``; one generator, seeded from
    ``fixed["seed"]``, serves every row in turn."""
    import time as _time

    _trials(trials)
    rng = _rng(backend, fixed["seed"])
    result = SweepResult(name, fixed=fixed)
    rules = {k: v for k, v in fixed.items() if k != "seed"}
    started = _time.perf_counter()
    for policy, tw, r in product(_as_tuple(isn), _as_tuple(time_wait_msl), _as_tuple(reconnect_delay)):
        if tw < 0:
            raise ValueError(f"time_wait_msl: must be >= 0, got {tw}")
        outcome, _ = run_trials(
            trials, policy, tw * fixed["msl"], float(r), rng=rng, backend=backend, **rules
        )
        if backend == "numpy":
            counts = [int(c) for c in np.bincount(outcome, minlength=len(codes))]
        else:
            tally = Counter(outcome)
            counts = [tally[i] for i in range(len(codes))]
        hits = sum(counts[:n_hit_codes])
        low, high = wilson_interval(hits, trials)
        row = dict(
            isn=policy,
            time_wait_msl=float(tw),
            reconnect_delay=float(r),
            trials=trials,
            hits=hits,
            p=hits / trials,
            low=low,
            high=high,
        )
        row.update(parts(counts) if parts else {})
        row.update(
            {
                f"by_{code.replace('-', '_')}": int(c)
                for code, c in zip(codes[n_hit_codes:], counts[n_hit_codes:], strict=True)
            }
        )
        result.rows.append(row)
    result.seconds = _time.perf_counter() - started
    return result


def old_duplicate_sweep(
    time_wait_msl=(0.0, 0.25, 0.5, 0.75, 1.0, 2.0),
    *,
    reconnect_delay=(0.0,),
    isn=ISN_POLICIES,
    trials: int = 100_000,
    msl: float = 30.0,
    delay: float = 0.001,
    timestamps: bool = False,
    ack_check: bool = True,
    request_bytes: int = 100,
    old_offset: int = 0,
    seed: int = 0,
    backend: Optional[str] = None,
) -> SweepResult:
    """P(an old duplicate is accepted by a new incarnation of the same 4-tuple) against
    TIME_WAIT length (MSLs), reconnect delay (seconds) and ISN policy. The duplicate's time
    in the network is uniform on (0, MSL]. Rows also give the share of each defence.
    ``backend``: see the module's description."""
    backend = _backend(backend)
    fixed = dict(
        msl=msl,
        delay=delay,
        timestamps=timestamps,
        ack_check=ack_check,
        request_bytes=request_bytes,
        old_offset=old_offset,
        seed=seed,
    )
    return _grid_sweep(
        "old-duplicate",
        DUPLICATE_CODES,
        1,
        fixed,
        isn,
        time_wait_msl,
        reconnect_delay,
        trials,
        old_duplicate_trials,
        backend=backend,
    )


def provoked_reset_expected(time_wait_msl) -> dict:
    """The provoked-reset probabilities with fixed ISNs, both holds uniform on (0, 1] MSL and
    the handshakes' milliseconds neglected, at TIME_WAIT length ``T`` (in MSLs):

    - the old request is accepted when it outlives TIME_WAIT: ``max(0, 1 - T)``;
    - its reset is accepted when the request arrives within TIME_WAIT but request and reset
      together outlive it, ``P(A < T < A + B)``: ``T - T**2 / 2`` up to one MSL, then
      ``(2 - T)**2 / 2`` up to two, then 0;
    - either: ``P(A + B > T)``, the tail of a triangular distribution on (0, 2):
      ``1 - T**2 / 2`` up to one MSL, ``(2 - T)**2 / 2`` up to two, then 0.
    """
    tw = np.asarray(time_wait_msl, dtype=float)
    if np.any(tw < 0):
        raise ValueError(f"time_wait_msl: must be >= 0, got {time_wait_msl}")
    accepted = np.clip(1.0 - tw, 0.0, None)
    tail = np.where(tw <= 1, 1 - tw**2 / 2, np.where(tw <= 2, (2 - tw) ** 2 / 2, 0.0))
    return dict(accepted=accepted, reset=tail - accepted, disturbed=tail)


def provoked_reset_sweep(
    time_wait_msl=(0.0, 0.5, 1.0, 1.5, 2.0, 2.5),
    *,
    isn=("fixed",),
    reconnect_delay=(0.0,),
    trials: int = 100_000,
    msl: float = 30.0,
    delay: float = 0.001,
    timestamps: bool = False,
    ack_check: bool = True,
    request_bytes: int = 100,
    old_offset: int = 0,
    seed: int = 0,
    backend: Optional[str] = None,
) -> SweepResult:
    """P(a new incarnation of the same 4-tuple is disturbed: it accepts the old request, or
    the late reset the request provoked ends it) against TIME_WAIT length (MSLs), reconnect
    delay (seconds) and ISN policy. Rows give ``accepted`` and ``reset`` separately, and the
    count of each defence (``by_...``). ``backend``: see the module's description."""
    backend = _backend(backend)
    if not (msl > 0):
        raise ValueError(f"msl: must be > 0 seconds, got {msl}")
    for policy in _as_tuple(isn):
        if policy not in ISN_POLICIES:
            raise ValueError(f"isn: must be one of {', '.join(ISN_POLICIES)}, got {policy!r}")
    fixed = dict(
        msl=msl,
        delay=delay,
        timestamps=timestamps,
        ack_check=ack_check,
        request_bytes=request_bytes,
        old_offset=old_offset,
        seed=seed,
    )
    return _grid_sweep(
        "provoked-reset",
        PROVOKED_CODES,
        2,
        fixed,
        isn,
        time_wait_msl,
        reconnect_delay,
        trials,
        provoked_reset_trials,
        parts=lambda counts: dict(accepted=int(counts[0]), reset=int(counts[1])),
        backend=backend,
    )


def split_by_outcome(result: SweepResult, parts: dict, x: str = "time_wait_msl") -> SweepResult:
    """One row per (part, ``x``) from a sweep with one row per ``x``: ``parts`` maps a label
    to the row key holding that part's count (``{"old request accepted": "accepted"}``);
    each row gets its own estimate and Wilson interval, so that :func:`timewait.plots.
    sweep_curves` can draw the parts as separate curves (grouped by ``"part"``)."""
    xs = [r[x] for r in result.rows]
    if len(set(xs)) != len(xs):
        raise ValueError(f"result: must have one row per {x}; select one policy first")
    out = SweepResult(result.name, fixed=dict(result.fixed), seconds=result.seconds)
    for label, key in parts.items():
        if not result.rows or key not in result.rows[0]:
            raise ValueError(f"parts: {key!r} is not a column of the sweep")
        for r in result.rows:
            k, n = r[key], r["trials"]
            low, high = wilson_interval(k, n)
            out.rows.append(
                {"part": label, x: r[x], "trials": n, "hits": k, "p": k / n, "low": low, "high": high}
            )
    return out
