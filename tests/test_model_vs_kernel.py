"""The model and the kernel agree: the same scenarios give the same flags and end states.

Each test runs a kernel experiment (in a private network namespace) and the model's
scenario of the same name, and compares the handshake, the close (from the first FIN on;
data segments in between depend on the applications) and the end states.
"""

import pytest

from timewait.experiments import run
from timewait.model import simulate

pytestmark = pytest.mark.live


def close_part(trace):
    flags = trace.flag_sequence()
    first_fin = next(i for i, (_, f) in enumerate(flags) if "FIN" in f)
    return flags[first_fin:]


def assert_same(kernel, model):
    k_flags = kernel.trace.flag_sequence()
    assert k_flags[:3] == model.trace.flag_sequence()[:3], "handshake differs"
    assert close_part(kernel.trace) == close_part(model.trace), (
        f"close differs:\nkernel:\n{kernel.trace.table()}\nmodel:\n{model.trace.table()}"
    )
    assert kernel.end_states == model.end_states


@pytest.mark.parametrize("closer", ["client", "server"])
def test_four_way_close(full_tier, closer):
    kernel = run("four-way-close", closer=closer, merged_fin_ack=False, half_close=False)
    assert_same(kernel, simulate("four-way-close", closer=closer, time_wait=60.0))


@pytest.mark.parametrize("closer", ["client", "server"])
def test_merged_fin_ack(full_tier, closer):
    kernel = run("four-way-close", closer=closer, merged_fin_ack=True, half_close=False)
    assert_same(kernel, simulate("merged-close", closer=closer, time_wait=60.0))


@pytest.mark.parametrize("time_wait", [True, False])
def test_lost_final_ack(full_tier, time_wait):
    kernel = run("lost-final-ack", time_wait=time_wait)
    # The experiment's server closes as soon as it reads end-of-file: a merged close.
    model = simulate(
        "lost-final-ack", merged=True, request_bytes=8, response_bytes=6, time_wait=60.0 if time_wait else 0.0
    )
    assert_same(kernel, model)
    assert model.outcome == ("clean-close" if time_wait else "peer-reset")
    assert kernel.rst_seen == (model.outcome == "peer-reset")
