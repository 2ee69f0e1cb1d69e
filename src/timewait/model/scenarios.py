"""Named scenarios: two endpoints, a network, applications that connect and close, and a
named outcome.

``simulate(name, **params)`` runs one scenario and returns a :class:`SimulationResult`
whose ``outcome`` is one of :data:`OUTCOMES`. Parameters are described in :data:`PARAMS`;
each scenario is a :class:`Scenario` in :data:`REGISTRY` (``register``, ``get``), as the
named experiments are, and lists the parameters it uses.
"""

from __future__ import annotations

import functools
import json
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from ..trace import Trace
from . import states as S
from .endpoint import ISN_POLICIES, Endpoint, EndpointConfig, Packet, Rejection, StateChange, Transition
from .network import Drop, Hold, LinkConfig, Network
from .params import Param
from .scheduler import Scheduler

LINUX_TIME_WAIT = 60.0  # seconds, fixed in the Linux kernel (TCP_TIMEWAIT_LEN)
CLIENT_PORT, SERVER_PORT = 40000, 8080

OUTCOMES = {
    "clean-close": "both sides closed without a reset",
    "peer-reset": "a segment met a socket that no longer existed and was answered with a reset",
    "gave-up": "a side exhausted its retransmissions and closed without an answer",
    "incomplete": "the exchange had not finished when the run stopped",
    "old-duplicate-accepted": "a segment of the old incarnation was accepted by the new one",
    "old-duplicate-rejected": "the old duplicate was rejected; `defence` says what rejected it",
    "late-reset-accepted": "the reset the old duplicate provoked from the peer arrived late and "
    "reset the new incarnation",
    "late-reset-rejected": "the reset the old duplicate provoked from the peer arrived late and "
    "was discarded; `defence` says what discarded it",
}
DEFENCES = {
    "time-wait": "it arrived while TIME_WAIT still held the 4-tuple, so no new incarnation "
    "existed to accept it",
    "no-connection": "it arrived after TIME_WAIT but before the new incarnation began",
    "same-incarnation": "it arrived while its own connection still existed, which "
    "discarded it as a duplicate",
    "paws": "its timestamp was older than the newest one seen (RFC 7323 PAWS)",
    "sequence-window": "its sequence number fell outside the new incarnation's receive window",
    "ack-check": "it acknowledged data the new incarnation never sent (RFC 5961 / RFC 9293)",
    "syn-sent": "it arrived before the new incarnation's handshake finished, and SYN-SENT "
    "ignores a reset that acknowledges nothing (RFC 9293 section 3.10.7.3)",
    "rst-check": "its sequence number was in the window but not the next expected one, so it "
    "drew a challenge ACK instead of a reset (RFC 5961 section 3)",
}


_DAY, _MANY = 86400.0, 100  # seconds in a day; more losses or retries than a close can use
_WITHIN_MSL = "a number of seconds, more than 0 and at most the MSL"

PARAMS = {
    p.name: p
    for p in (
        Param(
            "msl",
            float,
            30.0,
            "maximum segment lifetime, seconds (Linux's 60 s TIME_WAIT is 2 MSL)",
            minimum=0,
            maximum=3600,
            above_minimum=True,
        ),
        Param("time_wait_msl", float, 2.0, "TIME_WAIT length in MSLs: 0, 1, 2, ...", minimum=0, maximum=100),
        Param(
            "time_wait",
            float,
            None,
            "TIME_WAIT length in seconds (overrides time_wait_msl; Linux: 60)",
            minimum=0,
            maximum=_DAY,
        ),
        Param(
            "closer",
            str,
            "client",
            "who closes first ('both': simultaneous close)",
            choices=("client", "server", "both"),
        ),
        Param(
            "merged", bool, False, "the passive closer piggy-backs its ACK on its FIN (three-segment close)"
        ),
        Param(
            "half_close",
            bool,
            False,
            "the passive side sends response_bytes after the first FIN, then closes",
        ),
        Param("request_bytes", int, 0, "bytes the client sends after connecting", minimum=0, maximum=10**9),
        Param("response_bytes", int, 0, "bytes the server sends back", minimum=0, maximum=10**9),
        Param("delay", float, 0.001, "one-way network delay, seconds", minimum=0, maximum=3600),
        Param("jitter", float, 0.0, "scale of the random extra delay, seconds", minimum=0, maximum=3600),
        Param(
            "distribution",
            str,
            "uniform",
            "distribution of the extra delay",
            choices=("uniform", "exponential"),
        ),
        Param(
            "loss", float, 0.0, "probability that any segment is lost, both directions", minimum=0, maximum=1
        ),
        Param(
            "client_loss", float, None, "loss probability of segments the client sends", minimum=0, maximum=1
        ),
        Param(
            "server_loss", float, None, "loss probability of segments the server sends", minimum=0, maximum=1
        ),
        Param("drop", str, (), "drop rule SENDER:FLAGS:N, e.g. client:ACK:3 (repeatable)"),
        Param("duplicate", float, 0.0, "probability that a segment arrives twice", minimum=0, maximum=1),
        Param("reorder", float, 0.0, "probability that a segment is held back 10 ms", minimum=0, maximum=1),
        Param("isn", str, "clock", "initial sequence number policy", choices=ISN_POLICIES),
        Param("timestamps", bool, False, "TCP timestamps, and with them PAWS"),
        Param("ack_check", bool, True, "RFC 5961 ACK acceptability check"),
        Param("rfc1337", bool, False, "ignore resets in TIME_WAIT (RFC 1337)"),
        Param(
            "rto",
            float,
            0.2,
            "first retransmission timeout, seconds (doubles each time)",
            minimum=0,
            maximum=120,
            above_minimum=True,
        ),
        Param("max_retries", int, 8, "retransmissions before giving up", minimum=0, maximum=_MANY),
        Param(
            "fin_losses",
            int,
            1,
            "how many of the closer's FINs in a row the network loses",
            minimum=0,
            maximum=_MANY,
        ),
        Param(
            "final_ack_losses",
            int,
            1,
            "how many final ACKs in a row the network loses",
            minimum=0,
            maximum=_MANY,
        ),
        Param(
            "final_ack_loss",
            float,
            None,
            "probability that each final ACK is lost (instead of final_ack_losses)",
            minimum=0,
            maximum=1,
        ),
        Param(
            "reconnect_delay",
            float,
            0.0,
            "seconds between the 4-tuple becoming free and the new connection",
            minimum=0,
            maximum=_DAY,
        ),
        Param(
            "hold",
            float,
            None,
            "how long the old duplicate stays in the network, seconds (at most the MSL; default: the MSL)",
            valid=_WITHIN_MSL,
        ),
        Param(
            "answer_hold",
            float,
            None,
            "how long the peer's reset, provoked by the old duplicate, "
            "stays in the network, seconds (at most the MSL; default: "
            "the MSL)",
            valid=_WITHIN_MSL,
        ),
        Param(
            "old_offset",
            int,
            0,
            "bytes connection 1 carried before the duplicated segment",
            minimum=0,
            maximum=10**9,
        ),
        Param("seed", int, 0, "random seed", minimum=0, maximum=2**32 - 1),
        Param("client_isns", tuple, (), "explicit client ISNs, one per incarnation", cli=False),
        Param("server_isns", tuple, (), "explicit server ISNs, one per incarnation", cli=False),
        Param(
            "isn_secret",
            int,
            None,
            "RFC 6528 per-4-tuple secret of the clock ISN",
            cli=False,
            minimum=0,
            maximum=2**32 - 1,
        ),
        Param("ts_offset", int, None, "timestamp clock offset", cli=False, minimum=0, maximum=2**32 - 1),
    )
}

_NET = (
    "msl",
    "delay",
    "jitter",
    "distribution",
    "loss",
    "client_loss",
    "server_loss",
    "drop",
    "duplicate",
    "reorder",
    "seed",
)
_TCP = ("time_wait_msl", "time_wait", "isn", "timestamps", "ack_check", "rfc1337", "rto", "max_retries")


@dataclass
class SimulationResult:
    scenario: str
    outcome: str
    defence: Optional[str]
    explanation: str
    params: dict
    trace: Trace
    timeline: list[StateChange]  # both endpoints' states in time order
    end_states: dict  # when the network fell quiet (what `ss` would show then)
    final_states: dict  # after every timer has run
    transitions: list[Transition]  # both endpoints', in time order
    settle_time: float

    def flag_sequence(self, include_dropped: bool = True) -> list:
        return self.trace.flag_sequence(include_dropped)

    def to_dict(self) -> dict:
        return {
            "scenario": self.scenario,
            "outcome": self.outcome,
            "defence": self.defence,
            "explanation": self.explanation,
            "params": _jsonable(self.params),
            "end_states": self.end_states,
            "final_states": self.final_states,
            "settle_time": self.settle_time,
            "flags": [
                f"{src}: {flags}" + (" (dropped)" if s.note == "dropped" else "")
                for (src, flags), s in zip(self.trace.flag_sequence(), self.trace, strict=True)
            ],
            "trace": self.trace.to_dicts(),
            "timeline": [list(row) for row in self.timeline],
        }

    def to_json(self, indent: int = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def __str__(self) -> str:
        ends = ", ".join(f"{k} {v}" for k, v in self.end_states.items())
        head = f"{self.scenario}: outcome {self.outcome}"
        if self.defence:
            head += f" (defence: {self.defence})"
        return f"{head}\n{self.explanation}\nend states: {ends}\n{self.trace.table()}"


def _jsonable(params: dict) -> dict:
    out = {}
    for k, v in params.items():
        out[k] = list(v) if isinstance(v, tuple) else v
    return out


# ---- the driver ------------------------------------------------------------------------
class Simulation:
    """Connects two sans-IO endpoints to a Network through a Scheduler, and runs the
    applications' actions (``hooks``: ``(endpoint, notification) -> callable``)."""

    def __init__(self, seed, msl, client_cfg, server_cfg, links):
        self.sched = Scheduler(seed)
        rng = self.sched.rng
        self.endpoints = {
            "client": Endpoint("client", "server", client_cfg, rng),
            "server": Endpoint("server", "client", server_cfg, rng),
        }
        self.net = Network(
            self.sched, links, msl, self._deliver, {"client": CLIENT_PORT, "server": SERVER_PORT}
        )
        self.hooks = {}
        self._wakeups = {}
        self._seen_deliveries = {"client": 0, "server": 0}

    def do(self, name: str, method: str, *args) -> None:
        ep = self.endpoints[name]
        self._after(ep, getattr(ep, method)(*args, self.sched.now))

    def at(self, t: float, name: str, method: str, *args) -> None:
        self.sched.at(t, self.do, name, method, *args)

    def _deliver(self, p):
        ep = self.endpoints[p.dst]
        self._after(ep, ep.receive(p, self.sched.now))

    def _wake(self, ep):
        self._wakeups[ep.name] = None
        self._after(ep, ep.on_timer(self.sched.now))

    def _after(self, ep, out):
        """Put ``out`` on the network, keep one wake-up at ``ep``'s next deadline, and run
        the applications' hooks for what ``ep`` reported. Runs after every endpoint call."""
        if out:
            send = self.net.send
            for p in out:
                send(p)
        self._reschedule(ep)
        name = ep.name
        notifications = ep.notifications
        while notifications:
            _, what = notifications.pop(0)
            hook = self.hooks.get((name, what))
            if hook:
                hook()
        n = len(ep.deliveries)
        if n > self._seen_deliveries[name]:
            self._seen_deliveries[name] = n
            hook = self.hooks.get((name, "data"))
            if hook:
                hook()

    def _reschedule(self, ep):
        """Keep exactly one wake-up, at ``ep``'s next deadline."""
        deadline = ep.next_deadline()
        name = ep.name
        current = self._wakeups.get(name)
        if current is None or current[0] != deadline:
            if current is not None:
                current[1].cancel()
            self._wakeups[name] = (
                None if deadline is None else (deadline, self.sched.at(deadline, self._wake, ep))
            )

    def run(self, until=float("inf")):
        self.sched.run(until)

    def timeline(self) -> list:
        return _merge_timelines(self.endpoints)


def _merge_timelines(endpoints) -> list[StateChange]:
    """Both endpoints' timelines, each starting CLOSED at 0, in time order (the client's
    change first at the same instant)."""
    rows: list[tuple[tuple, StateChange]] = []
    for name, ep in endpoints.items():
        changes = ep.timeline
        if not changes or changes[0].t > 0 or changes[0].state != S.CLOSED:
            changes = [StateChange(0.0, name, S.CLOSED), *changes]
        rows += [((c.t, name != "client", i), c) for i, c in enumerate(changes)]
    rows.sort(key=lambda r: r[0])
    return [c for _, c in rows]


def state_at(timeline: list, endpoint: str, t: float) -> str:
    """The state ``endpoint`` was in at time ``t`` (changes at ``t`` included)."""
    state = S.CLOSED
    for when, who, s in timeline:
        if who == endpoint and when <= t:
            state = s
    return state


# ---- the registry -----------------------------------------------------------------------
@dataclass(frozen=True)
class Scenario:
    """One named scenario: the function that runs it, the names (in :data:`PARAMS`) of the
    parameters it takes, in the order ``--list`` shows them, and the defaults in which it
    differs from :data:`PARAMS`. Its summary is the function's docstring."""

    name: str
    run: Callable[..., SimulationResult]
    params: tuple[str, ...]
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        wrong = sorted(set(self.params) - set(PARAMS)) + sorted(set(self.defaults) - set(self.params))
        if wrong:
            raise ValueError(
                f"{self.name}: {', '.join(wrong)}: not in PARAMS, or a default for a parameter not taken"
            )

    @property
    def summary(self) -> str:
        """One paragraph: the run function's docstring."""
        return " ".join((self.run.__doc__ or "").split())

    @functools.cached_property
    def allowed(self) -> frozenset:
        return frozenset(self.params)

    @functools.cached_property
    def resolved_defaults(self) -> dict:
        """Every parameter's default for this scenario (computed once)."""
        return {k: self.defaults.get(k, PARAMS[k].default) for k in self.params}


REGISTRY: dict[str, Scenario] = {}
SCENARIOS = REGISTRY  # the name :mod:`timewait.model` exports: ``for name in SCENARIOS``


def register(scenario: Scenario) -> Scenario:
    REGISTRY[scenario.name] = scenario
    return scenario


def get(name: str) -> Scenario:
    if name not in REGISTRY:
        raise ValueError(f"scenario: must be one of {', '.join(REGISTRY)}, got {name!r}")
    return REGISTRY[name]


# ---- parameters --------------------------------------------------------------------------
def _resolve(name: str, params: dict) -> dict:
    scenario = REGISTRY[name]
    allowed, defaults = scenario.allowed, scenario.resolved_defaults
    for k in params:
        if k not in PARAMS:
            raise ValueError(f"{k}: not a simulation parameter; valid: {', '.join(sorted(PARAMS))}")
        if k not in allowed:
            raise ValueError(
                f"{k}: scenario {name!r} does not use this parameter; it takes {', '.join(sorted(allowed))}"
            )
    p = dict(defaults)
    p.update({k: v for k, v in params.items() if v is not None or PARAMS[k].default is None})
    p = {k: PARAMS[k].check(v) for k, v in p.items()}
    if p.get("delay", 0) > p["msl"]:
        raise ValueError(f"delay: must be between 0 and the MSL ({p['msl']} s), got {p['delay']}")
    for k in ("hold", "answer_hold"):
        if k in p:
            if p[k] is None:
                p[k] = p["msl"]
            v = p[k]
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not (0 < float(v) <= p["msl"]):
                raise ValueError(f"{k}: must be in (0, MSL={p['msl']}] seconds, got {v}")
    return p


def time_wait_seconds(p: dict) -> float:
    if p.get("time_wait") is not None:
        return float(p["time_wait"])
    return float(p["time_wait_msl"]) * float(p["msl"])


def parse_drop(spec: str) -> tuple:
    """``"client:ACK:3"`` -> ``("client", Drop("ACK", (3,)))``."""
    parts = spec.split(":")
    if len(parts) != 3 or parts[0] not in ("client", "server"):
        raise ValueError(
            f"drop: must look like SENDER:FLAGS:N (SENDER client or server, e.g. client:ACK:3), got {spec!r}"
        )
    try:
        nth = int(parts[2])
    except ValueError:
        raise ValueError(f"drop: N must be a whole number >= 1, got {parts[2]!r}") from None
    if nth < 1:
        raise ValueError(f"drop: N must be a whole number >= 1, got {nth}")
    return parts[0], Drop(parts[1], (nth,))


def _links(p: dict, extra_drops=None, extra_holds=None, loss_match=None) -> dict:
    drops: dict[str, list] = {"client": [], "server": []}
    specs = p.get("drop") or ()
    if isinstance(specs, str):
        specs = (specs,)
    for spec in specs:
        sender, rule = parse_drop(spec) if isinstance(spec, str) else spec
        drops[sender].append(rule)
    for sender, rule in extra_drops or []:
        drops[sender].append(rule)
    links = {}
    for src, dst in (("client", "server"), ("server", "client")):
        loss = p.get(f"{src}_loss")
        links[(src, dst)] = LinkConfig(
            loss=p.get("loss", 0.0) if loss is None else loss,
            loss_match=(loss_match or {}).get(src, "any"),
            drops=tuple(drops[src]),
            delay=p.get("delay", 0.001),
            jitter=p.get("jitter", 0.0),
            distribution=p.get("distribution", "uniform"),
            duplicate=p.get("duplicate", 0.0),
            reorder=p.get("reorder", 0.0),
            holds=tuple(r for s, r in (extra_holds or []) if s == src),
        )
    return links


def _configs(p: dict, merged_side: Optional[str] = None) -> tuple:
    common = dict(
        time_wait=time_wait_seconds(p),
        isn_policy=p.get("isn", "clock"),
        timestamps=p.get("timestamps", False),
        ack_check=p.get("ack_check", True),
        rfc1337=p.get("rfc1337", False),
        rto=p.get("rto", 0.2),
        max_retries=p.get("max_retries", 8),
        isn_secret=p.get("isn_secret"),
        ts_offset=p.get("ts_offset"),
    )
    client = EndpointConfig(
        **common, isns=tuple(p.get("client_isns") or ()), merge_fin_ack=merged_side == "client"
    )
    server = EndpointConfig(
        **common, isns=tuple(p.get("server_isns") or ()), merge_fin_ack=merged_side == "server"
    )
    return client, server


def _finish(name, p, sim: Simulation, outcome=None, defence=None) -> SimulationResult:
    timeline = _merge_timelines(sim.endpoints)
    settle = sim.net.last_activity
    end = {n: state_at(timeline, n, settle) for n in ("client", "server")}
    final = {n: ep.state for n, ep in sim.endpoints.items()}
    if outcome is None:
        outcome = _close_outcome(sim, final)
    explanation = OUTCOMES[outcome]
    if defence:
        explanation += f": {DEFENCES[defence]}"
    transitions = sorted((tr for ep in sim.endpoints.values() for tr in ep.transitions), key=lambda r: r.t)
    return SimulationResult(
        name,
        outcome,
        defence,
        explanation,
        dict(p),
        sim.net.trace(),
        timeline,
        end,
        final,
        transitions,
        settle,
    )


def _close_outcome(sim, final) -> str:
    notes = {what for ep in sim.endpoints.values() for _, what in ep.history}
    if "gave-up" in notes:
        return "gave-up"
    if any(ep.resets_received for ep in sim.endpoints.values()):
        return "peer-reset"
    if all(s == S.CLOSED for s in final.values()):
        return "clean-close"
    return "incomplete"


# ---- scenarios --------------------------------------------------------------------------
class _CloseExchange:
    """The applications of a close scenario: connect, exchange request and response, then
    close: ``closer`` first, the other side when it reads end-of-file; ``both`` closes the
    two sides at the same instant. Its methods are the simulation's hooks."""

    def __init__(self, sim: Simulation, p: dict, closer: str, half_close: bool = False):
        self.sim, self.closer, self.half_close = sim, closer, half_close
        self.req, self.resp = p.get("request_bytes", 0), p.get("response_bytes", 0)
        self.responded = False  # the server has sent its response
        self.closed = False  # the closer has closed
        sim.hooks.update(
            {
                ("client", "established"): self.client_established,
                ("server", "data"): self.server_data,
                ("client", "data"): self.client_data,
                ("server", "eof"): self.server_eof,
                ("client", "eof"): self.client_eof,
            }
        )
        if self.req == 0 and self.resp and not half_close:
            sim.hooks[("server", "established")] = self.server_data
        sim.do("server", "listen")
        sim.at(0.0, "client", "connect")

    def _received(self, name: str) -> int:
        return sum(d.length for d in self.sim.endpoints[name].deliveries if d.incarnation == 1)

    def close_both(self):
        if not self.closed:
            self.closed = True
            if self.closer in ("client", "both"):
                self.sim.do("client", "close")
            if self.closer in ("server", "both"):
                self.sim.do("server", "close")

    def client_established(self):
        if self.req:
            self.sim.do("client", "send", self.req)
        if not self.resp or self.half_close:
            self.close_both()

    def server_data(self):
        if self.resp and not self.responded and self._received("server") >= self.req and not self.half_close:
            self.responded = True
            self.sim.do("server", "send", self.resp)
            if self.closer in ("server", "both"):
                self.close_both()

    def client_data(self):
        if (
            self.resp
            and self._received("client") >= self.resp
            and self.closer == "client"
            and not self.half_close
        ):
            self.close_both()

    def server_eof(self):
        if self.half_close and self.resp:
            self.sim.do("server", "send", self.resp)
        if self.closer == "client":
            self.sim.do("server", "close")

    def client_eof(self):
        if self.closer == "server":
            self.sim.do("client", "close")


def _run_close(name, params, merged_default=False, **kw) -> SimulationResult:
    p = _resolve(name, params)
    closer = p.get("closer", "client")
    merged = p.get("merged", merged_default)
    passive = {"client": "server", "server": "client"}.get(closer)
    client_cfg, server_cfg = _configs(p, merged_side=passive if merged else None)
    sim = Simulation(p["seed"], p["msl"], client_cfg, server_cfg, _links(p, **kw))
    _CloseExchange(sim, p, closer, half_close=p.get("half_close", False))
    sim.run()
    return _finish(name, p, sim)


def four_way_close(**params) -> SimulationResult:
    """Connect, optionally exchange data, and close: the closer sends FIN, the other side
    ACKs it, then sends its own FIN, which the closer ACKs before entering TIME_WAIT."""
    return _run_close("four-way-close", params)


def merged_close(**params) -> SimulationResult:
    """The passive side closes as soon as it reads end-of-file, and its ACK rides on its
    FIN: a three-segment close."""
    return _run_close("merged-close", params, merged_default=True)


def simultaneous_close(**params) -> SimulationResult:
    """Both sides close at the same instant; their FINs cross, both pass through CLOSING
    and both end in TIME_WAIT."""
    return _run_close("simultaneous-close", params)


def lost_fin(**params) -> SimulationResult:
    """The closer's first FIN is lost (or more: ``drop``); it is retransmitted with
    exponential backoff."""
    p = _resolve("lost-fin", params)
    closer = p["closer"]
    n = p["fin_losses"]
    extra = [(closer, Drop("FIN|ACK", tuple(range(1, n + 1))))] if n else []
    client_cfg, server_cfg = _configs(p)
    sim = Simulation(p["seed"], p["msl"], client_cfg, server_cfg, _links(p, extra_drops=extra))
    _CloseExchange(sim, p, closer)
    sim.run()
    return _finish("lost-fin", p, sim)


def lost_final_ack(**params) -> SimulationResult:
    """The closer's final ACK is lost. The passive side retransmits its FIN: a closer still
    in TIME_WAIT ACKs it again (clean close); a closer that kept no TIME_WAIT answers with a
    reset (peer-reset)."""
    p = _resolve("lost-final-ack", params)
    closer = p["closer"]
    client_cfg, server_cfg = _configs(p, merged_side=_other(closer) if p["merged"] else None)
    is_final_ack = _FinalAck()
    if p["final_ack_loss"] is not None:
        links = _links(p, loss_match={closer: is_final_ack})
        links[(closer, _other(closer))].loss = p["final_ack_loss"]
    else:
        n = p["final_ack_losses"]
        extra = [(closer, Drop(is_final_ack, tuple(range(1, n + 1))))] if n else []
        links = _links(p, extra_drops=extra)
    sim = Simulation(p["seed"], p["msl"], client_cfg, server_cfg, links)
    is_final_ack.closer = sim.endpoints[closer]
    _CloseExchange(sim, p, closer)
    sim.run()
    return _finish("lost-final-ack", p, sim)


class _FinalAck:
    """Matches the final ACK: an ACK its sender sends in TIME_WAIT. The sender, ``closer``,
    is set once the simulation has built the endpoints (the links are built before them)."""

    closer: Optional[Endpoint] = None

    def __call__(self, pkt: Packet) -> bool:
        return pkt.flags == "ACK" and self.closer is not None and self.closer.state == S.TIME_WAIT


def _other(name):
    return "server" if name == "client" else "client"


def old_duplicate(**params) -> SimulationResult:
    """A data segment of connection 1 wanders in the network for ``hold`` seconds. Meanwhile
    connection 1 closes, the client's TIME_WAIT ends, and after ``reconnect_delay`` the
    client connects again from the same port (a new incarnation of the same 4-tuple), which
    then stays idle, as a pooled connection would. Does the server accept the old bytes as
    the new connection's?"""
    p = _resolve("old-duplicate", params)
    sim, arrival, _ = _run_old_duplicate("old-duplicate", p)
    outcome, defence = _judge_duplicate(sim.endpoints["server"], arrival)
    return _finish("old-duplicate", p, sim, outcome, defence)


def provoked_reset(**params) -> SimulationResult:
    """As old-duplicate, plus the answer the stale copy may provoke: if it reaches the
    server while the server has no connection, the server answers with a reset, and the
    network keeps a copy of that reset for ``answer_hold`` seconds too. The reset carries
    connection 1's numbers back to the client's address up to two MSLs after the request
    left. Does the new incarnation accept the old bytes, or does the late reset end it?"""
    p = _resolve("provoked-reset", params)
    sim, arrival, answer = _run_old_duplicate("provoked-reset", p, answer_hold=p["answer_hold"])
    outcome, defence = _judge_duplicate(sim.endpoints["server"], arrival)
    if outcome != "old-duplicate-accepted" and answer is not None:
        outcome, defence = _judge_answer(answer)
    return _finish("provoked-reset", p, sim, outcome, defence)


def _run_old_duplicate(name: str, p: dict, answer_hold: Optional[float] = None) -> tuple:
    """Run the old-duplicate exchange; with ``answer_hold``, also keep a copy of the reset
    the server sends to the old duplicate. Returns the simulation and the :class:`Arrival`
    of each held copy: the request's at the server, the reset's at the client (None for a
    copy that never arrived)."""
    req = p["request_bytes"]
    if req < 1:
        raise ValueError(f"request_bytes: must be >= 1 in {name}, got {req}")
    nth = 2 if p["old_offset"] else 1
    hold = Hold(lambda pkt: pkt.incarnation == 1 and "PSH" in pkt.flags, p["hold"], nth)
    holds = [("client", hold)]
    if answer_hold is not None:
        holds.append(("server", Hold(lambda pkt: pkt.incarnation == 1 and pkt.flags == "RST", answer_hold)))
    client_cfg, server_cfg = _configs(p)
    sim = Simulation(p["seed"], p["msl"], client_cfg, server_cfg, _links(p, extra_holds=holds))
    _Reconnect(sim, p)
    held = sim.net.observer = _HeldCopies(sim)
    sim.run()
    return sim, held.request, held.answer


class _Reconnect:
    """The applications of the old-duplicate scenarios: connection 1 carries a request (after
    ``old_offset`` bytes) and a response, and closes; the client connects again from the
    same port ``reconnect_delay`` seconds after connection 1 closed on its side. Its
    methods are the simulation's hooks."""

    def __init__(self, sim: Simulation, p: dict):
        self.sim = sim
        self.client, self.server = sim.endpoints["client"], sim.endpoints["server"]
        self.req, self.resp, self.offset = p["request_bytes"], p["response_bytes"], p["old_offset"]
        self.reconnect_delay = p["reconnect_delay"]
        self.reconnected = False
        sim.hooks.update(
            {
                ("client", "established"): self.client_established,
                ("server", "data"): self.server_data,
                ("client", "data"): self.client_data,
                ("server", "eof"): self.server_eof,
                ("client", "closed"): self.client_closed,
            }
        )
        sim.do("server", "listen")
        sim.at(0.0, "client", "connect")

    @staticmethod
    def _received(ep: Endpoint) -> int:
        return sum(d.length for d in ep.deliveries if d.incarnation == 1)

    def client_established(self):
        if self.client.incarnations == 1:
            if self.offset:
                self.sim.do("client", "send", self.offset)
            self.sim.do("client", "send", self.req)
            if not self.resp:
                self.sim.do("client", "close")

    def server_data(self):
        server = self.server
        if (
            server.incarnations == 1
            and self.resp
            and self._received(server) >= self.req + self.offset
            and server.state == S.ESTABLISHED
        ):
            self.sim.do("server", "send", self.resp)

    def client_data(self):
        client = self.client
        if client.incarnations == 1 and client.state == S.ESTABLISHED and self._received(client) >= self.resp:
            self.sim.do("client", "close")

    def server_eof(self):
        if self.server.tcb is not None and self.server.tcb.incarnation == 1:
            self.sim.do("server", "close")

    def client_closed(self):
        if self.client.incarnations == 1 and not self.reconnected:
            self.reconnected = True
            self.sim.sched.after(self.reconnect_delay, self.sim.do, "client", "connect")


@dataclass
class Arrival:
    """A copy held in the network, arriving at its receiver: what the two endpoints had
    then, and what the receiver did with it."""

    t: float
    client_state: str
    server_incarnation: Optional[int]  # None: the server had no connection
    resets_before: int  # resets the receiver had accepted before
    rejections_before: int  # segments the receiver had rejected before
    rejection: Optional[Rejection] = None  # how the receiver rejected the copy, if it did
    reset: bool = False  # the copy (a reset) ended the receiver's connection


class _HeldCopies:
    """Network observer: the :class:`Arrival` of the client's held request (at the server)
    and of the server's held reset (at the client)."""

    def __init__(self, sim: Simulation):
        self.sim = sim
        self.request: Optional[Arrival] = None
        self.answer: Optional[Arrival] = None

    def arriving(self, p: Packet) -> None:
        if p.note != "old duplicate":
            return
        client, server = self.sim.endpoints["client"], self.sim.endpoints["server"]
        receiver = self.sim.endpoints[p.dst]
        arrival = Arrival(
            self.sim.sched.now,
            client.state,
            server.tcb.incarnation if server.tcb else None,
            receiver.resets_received,
            len(receiver.rejections),
        )
        if p.src == "client":
            self.request = arrival
        else:
            self.answer = arrival

    def delivered(self, p: Packet) -> None:
        if p.note != "old duplicate":
            return
        arrival = self.request if p.src == "client" else self.answer
        receiver = self.sim.endpoints[p.dst]
        assert arrival is not None  # set by arriving()
        arrival.rejection = next(
            (r for r in receiver.rejections[arrival.rejections_before :] if r.packet.note == "old duplicate"),
            None,
        )
        arrival.reset = receiver.resets_received > arrival.resets_before


def _judge_answer(answer: Arrival) -> tuple:
    """What became of the late reset, judged from what the client did with it."""
    if answer.reset:
        return "late-reset-accepted", None
    if answer.rejection is not None:
        return "late-reset-rejected", answer.rejection.defence
    state = answer.client_state
    if state == S.TIME_WAIT:
        return "late-reset-rejected", "time-wait"  # behind rcv_nxt: outside the window
    if state == S.CLOSED:
        return "late-reset-rejected", "no-connection"
    if state == S.SYN_SENT:
        return "late-reset-rejected", "syn-sent"
    return "late-reset-rejected", "sequence-window"  # synchronized: an unacceptable reset


def _judge_duplicate(server: Endpoint, arrival: Optional[Arrival]) -> tuple:
    if any(d.sender_incarnation != d.incarnation for d in server.deliveries):
        return "old-duplicate-accepted", None
    if arrival is not None and arrival.server_incarnation == 1:
        return "old-duplicate-rejected", "same-incarnation"
    if arrival is None or arrival.rejection is None:
        return "incomplete", None
    rej = arrival.rejection
    if rej.defence == "no-connection":
        return "old-duplicate-rejected", (
            "time-wait" if arrival.client_state == S.TIME_WAIT else "no-connection"
        )
    return "old-duplicate-rejected", rej.defence


register(
    Scenario(
        "four-way-close",
        four_way_close,
        params=_NET + _TCP + ("closer", "merged", "half_close", "request_bytes", "response_bytes"),
    )
)
register(
    Scenario(
        "merged-close",
        merged_close,
        params=_NET + _TCP + ("closer", "request_bytes", "response_bytes"),
        defaults={"closer": "client"},
    )
)
register(
    Scenario(
        "simultaneous-close",
        simultaneous_close,
        params=_NET + _TCP + ("closer", "request_bytes"),
        defaults={"closer": "both"},
    )
)
register(
    Scenario(
        "lost-fin",
        lost_fin,
        params=_NET + _TCP + ("closer", "fin_losses", "request_bytes", "response_bytes"),
    )
)
register(
    Scenario(
        "lost-final-ack",
        lost_final_ack,
        params=_NET
        + _TCP
        + ("closer", "merged", "final_ack_losses", "final_ack_loss", "request_bytes", "response_bytes"),
    )
)
_ISNS = ("client_isns", "server_isns", "isn_secret", "ts_offset")
register(
    Scenario(
        "old-duplicate",
        old_duplicate,
        params=_NET
        + _TCP
        + ("request_bytes", "response_bytes", "reconnect_delay", "hold", "old_offset")
        + _ISNS,
        defaults={"request_bytes": 100, "response_bytes": 100},
    )
)
register(
    Scenario(
        "provoked-reset",
        provoked_reset,
        params=_NET
        + _TCP
        + ("request_bytes", "response_bytes", "reconnect_delay", "hold", "answer_hold", "old_offset")
        + _ISNS,
        defaults={"request_bytes": 100, "response_bytes": 100},
    )
)


def list_scenarios() -> dict:
    """``{name: one-paragraph description}``."""
    return {name: sc.summary for name, sc in REGISTRY.items()}


def simulate(scenario: str, **params) -> SimulationResult:
    """Run the named scenario; parameters as in :data:`PARAMS`."""
    return get(scenario).run(**params)
