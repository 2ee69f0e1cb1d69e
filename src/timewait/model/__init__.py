"""A sans-IO model of TCP connection termination, for what the kernel cannot show.

- :mod:`.states`: RFC 9293's state diagram as a transition table.
- :mod:`.endpoint`: one endpoint, sans-IO (segments in, segments out, timers as deadlines).
- :mod:`.network`: loss, delay bounded by the MSL, duplication, reordering.
- :mod:`.scheduler`: a deterministic, seeded discrete-event engine.
- :mod:`.scenarios`: named scenarios with named outcomes (``simulate``).
- :mod:`.params`: one parameter of a scenario or an experiment, and its valid range.
- :mod:`.sweeps`: vectorised Monte Carlo estimates with confidence intervals.
- :mod:`.portbudget`: how many TIME_WAIT sockets a connection rate leaves behind.
- :mod:`.natbudget`: how many connections per second a NAT gateway's port range carries.
"""

from .scenarios import (
    DEFENCES,
    OUTCOMES,
    PARAMS,
    SCENARIOS,
    Scenario,
    SimulationResult,
    list_scenarios,
    simulate,
)
from .states import TRANSITIONS, TransitionError

__all__ = [
    "simulate",
    "list_scenarios",
    "SimulationResult",
    "OUTCOMES",
    "DEFENCES",
    "PARAMS",
    "SCENARIOS",
    "Scenario",
    "TRANSITIONS",
    "TransitionError",
]
