"""Monte Carlo sweeps, vectorised with numpy, or in plain Python where numpy is missing.

Each sweep draws its trials' random inputs as arrays and decides every trial's outcome
with the same rules, checks and event times the event-driven scenarios use
(:func:`timewait.model.scenarios.lost_final_ack`,
:func:`~timewait.model.scenarios.old_duplicate` and
:func:`~timewait.model.scenarios.provoked_reset`, with a fixed network delay); the tests
run both on the same draws and require the same outcome trial by trial.

``backend="python"`` decides the same trials one by one with the standard library's
``random`` (seeded, so a seed still gives the same result, though not numpy's): that is how
the sweeps run in a web page's Pyodide, where the course site can serve no numpy. A trial
takes about 0.8 us here against numpy's 0.1 us, and about 3 us in a browser, so callers
there ask for fewer trials, and the intervals say so.
The tests require both backends to give the same outcome on the same draws.

Estimates come with Wilson score intervals (95 % by default).
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from itertools import product
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


def _duplicate_times(time_wait, reconnect_delay, delay) -> dict:
    """Event times of the old-duplicate exchange, with the event engine's float operations
    (see scenarios.old_duplicate)."""
    t = [0.0]
    for _ in range(7):
        t.append(t[-1] + delay)
    tw_end = t[6] + time_wait
    t2 = tw_end + reconnect_delay  # new SYN
    syn_at_server = t2 + delay
    return dict(
        t=t,
        sent=t[2],  # the duplicated request leaves with the handshake's last ACK
        old_gone=t[7],  # server's connection 1 ends when the final ACK arrives
        tw_end=tw_end,
        t2=t2,
        syn_at_server=syn_at_server,
        established_at_client=syn_at_server + delay,  # the SYN,ACK arrives
        established_at_server=(syn_at_server + delay) + delay,
    )


def _isns(isn, draws, t, isn_fixed, isn_clock_rate, whole=None) -> tuple:
    """ISNs of (client 1, client 2, server 1, server 2): arrays (random ISNs) or numbers of
    type ``whole`` (np.int64 by default; int for the plain-Python backend)."""
    if isn == "random":
        return (
            draws.client_isns[:, 0],
            draws.client_isns[:, 1],
            draws.server_isns[:, 0],
            draws.server_isns[:, 1],
        )
    whole = whole or np.int64
    if isn == "fixed":
        x = whole(isn_fixed % MOD)
        return x, x, x, x
    # RFC 6528 with the same secret for both incarnations of the 4-tuple
    return (
        whole(0),
        whole(int(t["t2"] * isn_clock_rate) % MOD),
        whole(int(t["t"][1] * isn_clock_rate) % MOD),
        whole(int(t["syn_at_server"] * isn_clock_rate) % MOD),
    )


def _duplicate_checks(
    t, c1, c2, s1, s2, timestamps, ack_check, request_bytes, old_offset, rcv_wnd, ts_hz
) -> tuple:
    """What decides the old request's fate once the new incarnation has begun, for the
    incarnations' ISNs (numbers or arrays alike): (in the new window, its ACK is the one
    SYN-RECEIVED expects, its ACK fails ESTABLISHED's check, PAWS drops it in SYN-RECEIVED,
    PAWS drops it in ESTABLISHED)."""
    seq = (c1 + 1 + old_offset) % MOD
    ack = (s1 + 1) % MOD
    rcv_nxt = (c2 + 1) % MOD
    in_window = (((seq - rcv_nxt) % MOD) < rcv_wnd) | (((seq + request_bytes - 1 - rcv_nxt) % MOD) < rcv_wnd)
    syn_rcvd_ack_ok = ack == (s2 + 1) % MOD
    snd_nxt = (s2 + 1) % MOD
    est_ack_bad = seq_lt(snd_nxt, ack)
    if ack_check:
        est_ack_bad = est_ack_bad | seq_lt(ack, (snd_nxt - 65535) % MOD)
    dup_ts = int(t["sent"] * ts_hz)
    paws_syn_rcvd = timestamps and dup_ts < int(t["t2"] * ts_hz)
    paws_est = timestamps and dup_ts < int(t["established_at_client"] * ts_hz)
    return in_window, syn_rcvd_ack_ok, est_ack_bad, paws_syn_rcvd, paws_est


def _duplicate_code(arrival, t, checks) -> int:
    """One trial's :data:`DUPLICATE_CODES` index, decided as old_duplicate_trials does."""
    if arrival < t["syn_at_server"]:
        return 3 if arrival < t["old_gone"] else 1 if arrival < t["tw_end"] else 2
    in_window, syn_rcvd_ack_ok, est_ack_bad, paws_syn_rcvd, paws_est = checks
    if arrival < t["established_at_server"]:
        return 4 if paws_syn_rcvd else 5 if not in_window else 0 if syn_rcvd_ack_ok else 6
    return 4 if paws_est else 5 if not in_window else 6 if est_ack_bad else 0


def _python_draws(n, isn, msl, rng, holds: int) -> tuple:
    """``holds`` lists of n holds uniform on (0, MSL], then (random ISNs only) n client and
    n server ISN pairs, from a ``random.Random``: the numpy draws' order."""
    draw, bits = rng.random, rng.getrandbits
    out: list = [[msl * (1.0 - draw()) for _ in range(n)] for _ in range(holds)]
    if isn == "random":
        out += [[(bits(32), bits(32)) for _ in range(n)] for _ in range(2)]
    else:
        out += [None, None]
    return tuple(out)


def _python_duplicate_codes(draws, t, isn, isn_fixed, isn_clock_rate, rules) -> list:
    """Each trial's :data:`DUPLICATE_CODES` index, one by one (the plain-Python backend)."""
    sent = t["sent"]
    if isn != "random":
        checks = _duplicate_checks(t, *_isns(isn, None, t, isn_fixed, isn_clock_rate, int), *rules)
        return [_duplicate_code(sent + h, t, checks) for h in draws.hold]
    return [
        _duplicate_code(sent + h, t, _duplicate_checks(t, c[0], c[1], s[0], s[1], *rules))
        for h, c, s in zip(draws.hold, draws.client_isns, draws.server_isns, strict=True)
    ]


def old_duplicate_trials(
    n: int,
    isn: str = "clock",
    time_wait: float = 60.0,
    reconnect_delay: float = 0.0,
    msl: float = 30.0,
    delay: float = 0.001,
    timestamps: bool = False,
    ack_check: bool = True,
    request_bytes: int = 100,
    old_offset: int = 0,
    rcv_wnd: int = 65535,
    isn_fixed: int = 1000,
    isn_clock_rate: float = RFC793_CLOCK_RATE,
    ts_hz: float = 1000.0,
    rng=None,
    draws: Optional[DuplicateDraws] = None,
    backend: Optional[str] = None,
):
    """Outcome code per trial (index into :data:`DUPLICATE_CODES`; 0 means the old bytes
    were accepted) and the draws used. Holds are uniform on (0, MSL]. With
    ``backend="python"`` the codes are a list and ``rng`` a ``random.Random``."""
    backend = _backend(backend)
    if isn not in ISN_POLICIES:
        raise ValueError(f"isn: must be one of {', '.join(ISN_POLICIES)}, got {isn!r}")
    for name, v in (("time_wait", time_wait), ("reconnect_delay", reconnect_delay)):
        if v < 0:
            raise ValueError(f"{name}: must be >= 0, got {v}")
    if not (0 < delay <= msl):
        raise ValueError(f"delay: must be in (0, MSL={msl}], got {delay}")
    rng = rng if rng is not None else _rng(backend, 0)
    t = _duplicate_times(time_wait, reconnect_delay, delay)
    rules = (timestamps, ack_check, request_bytes, old_offset, rcv_wnd, ts_hz)
    if backend == "python":
        draws = draws or DuplicateDraws(*_python_draws(n, isn, msl, rng, 1))
        return _python_duplicate_codes(draws, t, isn, isn_fixed, isn_clock_rate, rules), draws
    if draws is None:
        hold = msl * (1.0 - rng.random(n))
        if isn == "random":
            c = rng.integers(0, MOD, size=(n, 2), dtype=np.int64)
            s = rng.integers(0, MOD, size=(n, 2), dtype=np.int64)
        else:
            c = s = None
        draws = DuplicateDraws(hold, c, s)
    hold = np.asarray(draws.hold, dtype=float)
    sent, old_gone, tw_end = t["sent"], t["old_gone"], t["tw_end"]
    syn_at_server = t["syn_at_server"]
    established_at_server = t["established_at_server"]
    c1, c2, s1, s2 = _isns(isn, draws, t, isn_fixed, isn_clock_rate)
    arrival = sent + hold
    in_window, syn_rcvd_ack_ok, est_ack_bad, paws_syn_rcvd, paws_est = _duplicate_checks(
        t, c1, c2, s1, s2, *rules
    )

    codes = np.full(hold.shape, 0, dtype=np.int8)
    in_syn_rcvd = (arrival >= syn_at_server) & (arrival < established_at_server)
    in_est = arrival >= established_at_server
    ok = np.ones(hold.shape, dtype=bool) & in_window  # broadcast scalars to arrays
    codes = np.where(
        in_syn_rcvd, np.where(paws_syn_rcvd, 4, np.where(~ok, 5, np.where(syn_rcvd_ack_ok, 0, 6))), codes
    )
    codes = np.where(in_est, np.where(paws_est, 4, np.where(~ok, 5, np.where(est_ack_bad, 6, 0))), codes)
    before = arrival < syn_at_server
    codes = np.where(before, np.where(arrival < old_gone, 3, np.where(arrival < tw_end, 1, 2)), codes)
    return codes.astype(np.int8), draws


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
    count as ``by_<code>``. ``run_trials(policy, time_wait_s, delay_s, rng)`` gives the
    codes; one generator, seeded from ``fixed["seed"]``, serves every row in turn."""
    import time as _time

    _trials(trials)
    rng = _rng(backend, fixed["seed"])
    result = SweepResult(name, fixed=fixed)
    started = _time.perf_counter()
    for policy, tw, r in product(_as_tuple(isn), _as_tuple(time_wait_msl), _as_tuple(reconnect_delay)):
        if tw < 0:
            raise ValueError(f"time_wait_msl: must be >= 0, got {tw}")
        outcome = run_trials(policy, tw * fixed["msl"], float(r), rng)
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
        lambda policy, tw, r, rng: old_duplicate_trials(
            trials,
            policy,
            tw,
            r,
            msl,
            delay,
            timestamps,
            ack_check,
            request_bytes,
            old_offset,
            rng=rng,
            backend=backend,
        )[0],
        backend=backend,
    )


# ---- P(the old duplicate, or the reset it provokes, disturbs a new incarnation) ---------
@dataclass
class ProvokedDraws:
    """The random inputs of provoked-reset trials (one entry per trial): numpy arrays, or
    lists (of ISN pairs) for the plain-Python backend."""

    hold: np.ndarray  # the old request's time in the network
    answer_hold: np.ndarray  # the time in the network of the reset it provokes
    client_isns: np.ndarray  # shape (n, 2): incarnation 1, 2 (random ISNs only)
    server_isns: np.ndarray


def provoked_reset_trials(
    n: int,
    isn: str = "clock",
    time_wait: float = 60.0,
    reconnect_delay: float = 0.0,
    msl: float = 30.0,
    delay: float = 0.001,
    timestamps: bool = False,
    ack_check: bool = True,
    request_bytes: int = 100,
    old_offset: int = 0,
    rcv_wnd: int = 65535,
    isn_fixed: int = 1000,
    isn_clock_rate: float = RFC793_CLOCK_RATE,
    ts_hz: float = 1000.0,
    rng=None,
    draws: Optional[ProvokedDraws] = None,
    backend: Optional[str] = None,
):
    """Outcome code per trial (index into :data:`PROVOKED_CODES`) and the draws used (with
    ``backend="python"``, a list and a ``random.Random``, as in old_duplicate_trials).

    The old request is judged as in :func:`old_duplicate_trials`. When it reaches the server
    with no connection there (or fails the ACK check in SYN-RECEIVED), the server answers
    with a reset whose sequence number is the request's ACK number; the network keeps that
    reset ``answer_hold`` seconds. It reaches the client in TIME_WAIT (behind the window:
    dropped), with no connection, in SYN-SENT (a reset without ACK: ignored) or in the idle
    new incarnation, where RFC 5961 lets only the exact next sequence number reset it.
    Both holds are uniform on (0, MSL]."""
    if not (msl > 0):
        raise ValueError(f"msl: must be > 0 seconds, got {msl}")
    _trials(n)
    backend = _backend(backend)
    rng = rng if rng is not None else _rng(backend, 0)
    if backend == "python":
        draws = draws or ProvokedDraws(*_python_draws(n, isn, msl, rng, 2))
        return _python_provoked_codes(
            n,
            isn,
            time_wait,
            reconnect_delay,
            msl,
            delay,
            timestamps,
            ack_check,
            request_bytes,
            old_offset,
            rcv_wnd,
            isn_fixed,
            isn_clock_rate,
            ts_hz,
            draws,
        ), draws
    if draws is None:
        hold = msl * (1.0 - rng.random(n))
        answer_hold = msl * (1.0 - rng.random(n))
        if isn == "random":
            c = rng.integers(0, MOD, size=(n, 2), dtype=np.int64)
            s = rng.integers(0, MOD, size=(n, 2), dtype=np.int64)
        else:
            c = s = None
        draws = ProvokedDraws(hold, answer_hold, c, s)
    data, _ = old_duplicate_trials(
        len(draws.hold),
        isn,
        time_wait,
        reconnect_delay,
        msl,
        delay,
        timestamps,
        ack_check,
        request_bytes,
        old_offset,
        rcv_wnd,
        isn_fixed,
        isn_clock_rate,
        ts_hz,
        draws=DuplicateDraws(draws.hold, draws.client_isns, draws.server_isns),
    )
    t = _duplicate_times(time_wait, reconnect_delay, delay)
    _, _, s1, s2 = _isns(isn, draws, t, isn_fixed, isn_clock_rate)
    arrival = t["sent"] + np.asarray(draws.hold, dtype=float)
    in_syn_rcvd = (arrival >= t["syn_at_server"]) & (arrival < t["established_at_server"])
    provoked = (data == 1) | (data == 2) | ((data == 6) & in_syn_rcvd)
    answer_arrival = arrival + np.asarray(draws.answer_hold, dtype=float)
    rst_seq = (s1 + 1) % MOD  # the request's ACK number
    off = (rst_seq - (s2 + 1)) % MOD  # against the new incarnation's rcv_nxt
    off = off * np.ones(answer_arrival.shape, dtype=np.int64)
    established = np.where(off == 0, 1, np.where(off < rcv_wnd, 9, 10))
    answer = np.where(
        answer_arrival < t["tw_end"],
        6,
        np.where(
            answer_arrival < t["t2"], 7, np.where(answer_arrival < t["established_at_client"], 8, established)
        ),
    )
    # the old request's own fate, when it provoked nothing
    own = np.array(_OWN_FATE, dtype=np.int8)[data]
    return np.where(provoked, answer, own).astype(np.int8), draws


# A DUPLICATE_CODES index as a PROVOKED_CODES index, when the request provoked no reset.
_OWN_FATE = (0, -1, -1, 2, 3, 4, 5)


def _python_provoked_codes(
    n,
    isn,
    time_wait,
    reconnect_delay,
    msl,
    delay,
    timestamps,
    ack_check,
    request_bytes,
    old_offset,
    rcv_wnd,
    isn_fixed,
    isn_clock_rate,
    ts_hz,
    draws,
) -> list:
    """provoked_reset_trials' codes, trial by trial (the plain-Python backend)."""
    data, _ = old_duplicate_trials(
        n,
        isn,
        time_wait,
        reconnect_delay,
        msl,
        delay,
        timestamps,
        ack_check,
        request_bytes,
        old_offset,
        rcv_wnd,
        isn_fixed,
        isn_clock_rate,
        ts_hz,
        draws=DuplicateDraws(draws.hold, draws.client_isns, draws.server_isns),
        backend="python",
    )
    t = _duplicate_times(time_wait, reconnect_delay, delay)
    sent, syn_at_server, est_server = t["sent"], t["syn_at_server"], t["established_at_server"]
    tw_end, t2, est_client = t["tw_end"], t["t2"], t["established_at_client"]

    def in_new_incarnation(s1, s2):
        off = ((s1 + 1) % MOD - (s2 + 1)) % MOD  # the reset's sequence number against rcv_nxt
        return 1 if off == 0 else 9 if off < rcv_wnd else 10

    if isn != "random":
        _, _, s1, s2 = _isns(isn, None, t, isn_fixed, isn_clock_rate, int)
        fixed_answer = in_new_incarnation(s1, s2)
    codes = []
    for i, code in enumerate(data):
        arrival = sent + draws.hold[i]
        if not (code in (1, 2) or (code == 6 and syn_at_server <= arrival < est_server)):
            codes.append(_OWN_FATE[code])
            continue
        answer_arrival = arrival + draws.answer_hold[i]
        if answer_arrival < tw_end:
            codes.append(6)
        elif answer_arrival < t2:
            codes.append(7)
        elif answer_arrival < est_client:
            codes.append(8)
        elif isn == "random":
            codes.append(in_new_incarnation(draws.server_isns[i][0], draws.server_isns[i][1]))
        else:
            codes.append(fixed_answer)
    return codes


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
        lambda policy, tw, r, rng: provoked_reset_trials(
            trials,
            policy,
            tw,
            r,
            msl,
            delay,
            timestamps,
            ack_check,
            request_bytes,
            old_offset,
            rng=rng,
            backend=backend,
        )[0],
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
