"""Support for the TIME_WAIT-model lab: run the course's sans-IO model with the closing
rows of its transition table replaced by the student's, and read the kernel's recorded
four-way closes to compare with.

The model's endpoint looks up every state change in
``timewait.model.states.TRANSITIONS``; :func:`simulate_with` swaps the chosen rows of that
table for the student's for the length of one simulation, then puts the course's back.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from importlib import resources

from timewait.model import simulate
from timewait.timeouts import time_limit
from timewait.model import states as S

# The rows students write: the passive close and the active close, TIME_WAIT included.
PASSIVE_ROWS = (
    (S.ESTABLISHED, S.RCV_FIN),
    (S.CLOSE_WAIT, S.APP_CLOSE),
    (S.LAST_ACK, S.RCV_ACK_OF_FIN),
)
ACTIVE_ROWS = (
    (S.FIN_WAIT_1, S.RCV_ACK_OF_FIN),
    (S.FIN_WAIT_1, S.RCV_FIN),
    (S.FIN_WAIT_1, S.RCV_FIN_ACK_OF_FIN),
    (S.FIN_WAIT_2, S.RCV_FIN),
    (S.CLOSING, S.RCV_ACK_OF_FIN),
    (S.TIME_WAIT, S.RCV_FIN),
    (S.TIME_WAIT, S.TIMEOUT_2MSL),
)
GIVEN_ROWS = ((S.ESTABLISHED, S.APP_CLOSE),)  # the example row the notebook starts with


def given_table() -> dict:
    """The course's table without the rows students write."""
    student = set(PASSIVE_ROWS + ACTIVE_ROWS)
    return {k: v for k, v in S.TRANSITIONS.items() if k not in student}


@contextmanager
def student_table(rows: dict, graded=PASSIVE_ROWS + ACTIVE_ROWS):
    """Make the model use ``rows`` for the ``graded`` rows (a row missing from ``rows`` is
    absent) and the course's own rows everywhere else."""
    if not isinstance(rows, dict):
        raise TypeError(f"the table must be a dict of (state, event) -> (next state, actions), "
                        f"got {type(rows).__name__}")
    original = dict(S.TRANSITIONS)
    table = {k: v for k, v in original.items() if k not in graded}
    table.update({k: tuple(v) for k, v in rows.items() if k in graded})
    S.TRANSITIONS.clear()
    S.TRANSITIONS.update(table)
    try:
        yield
    finally:
        S.TRANSITIONS.clear()
        S.TRANSITIONS.update(original)


def simulate_with(rows: dict, scenario: str, graded=PASSIVE_ROWS + ACTIVE_ROWS,
                  seconds: float = 10.0, **params):
    """``simulate(scenario, **params)`` with the student's rows, under a time limit."""
    with time_limit(seconds, f"the {scenario} simulation"), student_table(rows, graded):
        return simulate(scenario, **params)


def recorded_close(closer: str = "client", merged: bool = False) -> dict:
    """A kernel four-way close from the course's recordings: the segments from the first FIN
    on as ``[(sender, flags)]``, and the end states."""
    text = resources.files("timewait").joinpath("recordings/four-way-close.json").read_text()
    for run in json.loads(text)["runs"]:
        p = run["params"]
        if p.get("closer") == closer and p.get("merged_fin_ack") == merged \
                and not p.get("half_close"):
            trace = [(s["src"], s["flags"]) for s in run["result"]["trace"]]
            return {"close": from_first_fin(trace), "end_states": run["result"]["end_states"],
                    "kernel": run["result"].get("kernel", "")}
    raise LookupError(f"no recorded four-way close with closer={closer}, merged={merged}")


def from_first_fin(flags: list) -> list:
    """``[(sender, flags)]`` from the first FIN on."""
    for i, (_, f) in enumerate(flags):
        if "FIN" in f:
            return [tuple(x) for x in flags[i:]]
    return []


def model_close(result) -> list:
    return from_first_fin(result.flag_sequence())
