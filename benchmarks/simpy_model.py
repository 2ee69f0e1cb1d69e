"""The model's close scenarios written the way a SimPy user would write them.

Both sides run the same sans-IO code -- :class:`timewait.model.endpoint.Endpoint` (TCP),
:class:`timewait.model.network.Network`'s loss, delay and recording, and the scenarios'
application logic (``scenarios._CloseExchange`` and the scenario functions) -- because
that is the point of a sans-IO model: any event loop can drive it. What differs is the
engine and the driver around it:

- ours (:class:`timewait.model.scenarios.Simulation`): callbacks on a heap
  (:class:`timewait.model.scheduler.Scheduler`); each endpoint has one wake-up at its next
  deadline, cancelled and rescheduled when the deadline moves; a segment in flight is one
  scheduled callback;
- SimPy (:class:`SimPySimulation`): each endpoint's timers are a SimPy *process* that
  sleeps until the endpoint's next deadline (``yield env.timeout(...)``) and is
  interrupted (``process.interrupt()``) when a segment or an application call moves the
  deadline; each segment in flight is a process that waits out its delay and hands the
  segment to the receiving endpoint; a scheduled application action is a process that
  waits, then acts.

(An inbox per endpoint, a ``simpy.Store``, would be another idiomatic design; it costs
SimPy more events per segment, and makes segments that arrive at the same instant wait a
turn of the event loop, so that same-time arrivals would be handled in another order than
the model defines.)

``with on_simpy(): simulate(...)`` runs the close scenarios (:data:`SIMPY_SCENARIOS`) on
SimPy; for the same seed the results, traces included, equal ours
(tests/test_model_simpy.py).
"""

from __future__ import annotations

import contextlib
import random

import simpy

from timewait.model import scenarios
from timewait.model.endpoint import Endpoint
from timewait.model.network import Network

_NOT_STARTED = object()
SIMPY_SCENARIOS = ("four-way-close", "merged-close", "simultaneous-close", "lost-fin", "lost-final-ack")


class SimPyClock:
    """What the shared code reads from the engine (``now``, ``rng``), and application
    actions scheduled for later (``at``/``after``) as SimPy processes."""

    def __init__(self, env: simpy.Environment, seed: int):
        self.env = env
        self.rng = random.Random(seed)

    @property
    def now(self) -> float:
        return self.env.now

    def at(self, t, fn, *args):
        return self.env.process(self._action(t, fn, args))

    def after(self, delay, fn, *args):
        return self.at(self.env.now + delay, fn, *args)

    def _action(self, t, fn, args):
        yield self.env.timeout(t - self.env.now)
        fn(*args)


class SimPyNetwork(Network):
    """Network whose segments in flight are SimPy processes."""

    def _schedule(self, p, t, copy_note):
        self.in_flight += 1
        self.scheduler.env.process(self._carry(p, t, copy_note))

    def _carry(self, p, t, copy_note):
        yield self.scheduler.env.timeout(t - self.scheduler.env.now)
        self._arrive(p, copy_note)  # records a copy, then hands it to the receiver


class SimPySimulation(scenarios.Simulation):
    """:class:`timewait.model.scenarios.Simulation` with SimPy as the engine."""

    def __init__(self, seed, msl, client_cfg, server_cfg, links):
        self.env = env = simpy.Environment(initial_time=0.0)
        self.sched = SimPyClock(env, seed)
        rng = self.sched.rng
        self.endpoints = {
            "client": Endpoint("client", "server", client_cfg, rng),
            "server": Endpoint("server", "client", server_cfg, rng),
        }
        self.net = SimPyNetwork(
            self.sched,
            links,
            msl,
            self._deliver,
            {"client": scenarios.CLIENT_PORT, "server": scenarios.SERVER_PORT},
        )
        self.hooks = {}
        self._seen_deliveries = {"client": 0, "server": 0}
        self._waiting_for = {}  # endpoint -> the deadline its timer process is waiting for
        self.processes = {name: env.process(self._timers(ep)) for name, ep in self.endpoints.items()}

    def _timers(self, ep):
        """One endpoint's timers: sleep until the next deadline, then run the timers that
        are due; an interrupt means the deadline moved."""
        env, name = self.env, ep.name
        while True:
            deadline = ep.next_deadline()
            self._waiting_for[name] = deadline
            try:
                if deadline is None:
                    yield env.event()  # no timer: wait for an interrupt
                else:
                    yield env.timeout(deadline - env.now)
            except simpy.Interrupt:
                continue
            self._after(ep, ep.on_timer(env.now))

    def _reschedule(self, ep):
        # An endpoint's own process recomputes its deadline when it loops; a call from
        # elsewhere (an application hook, a scheduled action) interrupts it if needed.
        # (A process that has not started yet reads the deadline when it starts.)
        waiting_for = self._waiting_for.get(ep.name, _NOT_STARTED)
        proc = self.processes.get(ep.name)
        if (
            waiting_for is not _NOT_STARTED
            and proc is not self.env.active_process
            and ep.next_deadline() != waiting_for
        ):
            proc.interrupt()
            self._waiting_for[ep.name] = "interrupted"

    def run(self, until=float("inf")):
        self.env.run(None if until == float("inf") else until)


@contextlib.contextmanager
def on_simpy():
    """Within the block, the scenarios run on :class:`SimPySimulation`."""
    original = scenarios.Simulation
    scenarios.Simulation = SimPySimulation
    try:
        yield
    finally:
        scenarios.Simulation = original
