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

from timewait.labkit import lab_tier, time_limit  # noqa: F401
from timewait.model import simulate
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
        raise TypeError(
            f"the table must be a dict of (state, event) -> (next state, actions), got {type(rows).__name__}"
        )
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


def simulate_with(
    rows: dict, scenario: str, graded=PASSIVE_ROWS + ACTIVE_ROWS, seconds: float = 10.0, **params
):
    """``simulate(scenario, **params)`` with the student's rows, under a time limit."""
    with time_limit(seconds, f"the {scenario} simulation"), student_table(rows, graded):
        return simulate(scenario, **params)


def recorded_close(closer: str = "client", merged: bool = False) -> dict:
    """A kernel four-way close from the course's recordings: the segments from the first FIN
    on as ``[(sender, flags)]``, and the end states."""
    text = resources.files("timewait").joinpath("recordings/four-way-close.json").read_text()
    for run in json.loads(text)["runs"]:
        p = run["params"]
        if p.get("closer") == closer and p.get("merged_fin_ack") == merged and not p.get("half_close"):
            trace = [(s["src"], s["flags"]) for s in run["result"]["trace"]]
            return {
                "close": from_first_fin(trace),
                "end_states": run["result"]["end_states"],
                "kernel": run["result"].get("kernel", ""),
            }
    raise LookupError(f"no recorded four-way close with closer={closer}, merged={merged}")


def from_first_fin(flags: list) -> list:
    """``[(sender, flags)]`` from the first FIN on."""
    for i, (_, f) in enumerate(flags):
        if "FIN" in f:
            return [tuple(x) for x in flags[i:]]
    return []


def model_close(result) -> list:
    return from_first_fin(result.flag_sequence())


def _flags(close: list) -> str:
    return ", ".join(f"{who} {flags}" for who, flags in close) or "(nothing)"


def check_against_kernel(rows: dict, graded, closer: str, merged: bool) -> None:
    """The model with the student's rows closes as the recorded kernel did."""
    result = simulate_with(
        rows, "four-way-close", graded=graded, closer=closer, merged=merged, request_bytes=8, response_bytes=6
    )
    kernel = recorded_close(closer, merged)
    how = "with the server's FIN and ACK in one segment" if merged else "in four segments"
    assert model_close(result) == kernel["close"], (
        f"The {closer} closing first, {how}: the kernel sent {_flags(kernel['close'])}; the "
        f"model with your rows sent {_flags(model_close(result))}."
    )
    assert result.end_states == kernel["end_states"], (
        f"The {closer} closing first, {how}: the kernel ended with {kernel['end_states']}; "
        f"the model with your rows with {result.end_states}."
    )


def check_lost_final_acks(rows: dict, losses=(1,)) -> None:
    """The active closer's final ACK lost ``n`` times: the model with the student's rows
    answers every retransmitted FIN and keeps TIME_WAIT as long as the course's does."""
    for n in losses:
        mine = simulate_with(rows, "lost-final-ack", graded=ACTIVE_ROWS, final_ack_losses=n)
        course = simulate_with(
            {k: S.TRANSITIONS[k] for k in ACTIVE_ROWS},
            "lost-final-ack",
            graded=ACTIVE_ROWS,
            final_ack_losses=n,
        )
        lost = f"{n} final ACK{'s' if n > 1 else ''} lost"
        assert mine.outcome == "clean-close", (
            f"{lost}: the peer should still see a clean close; the model says {mine.outcome} "
            f"({mine.explanation})."
        )
        assert mine.flag_sequence() == course.flag_sequence(), (
            f"{lost}: the segments should be {_flags(course.flag_sequence())}; with your rows "
            f"they are {_flags(mine.flag_sequence())}."
        )
        ends = [t for t, who, state in mine.timeline if who == "client" and state == "CLOSED"]
        want = [t for t, who, state in course.timeline if who == "client" and state == "CLOSED"]
        assert mine.timeline == course.timeline, (
            f"{lost}: the client left TIME_WAIT at t={ends[-1] if ends else None!r} s instead of "
            f"t={want[-1] if want else None!r} s. What happens to the 2 MSL timer when a "
            f"retransmitted FIN arrives in TIME_WAIT?"
        )
