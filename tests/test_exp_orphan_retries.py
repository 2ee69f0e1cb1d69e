"""orphan-retries: an orphaned LAST_ACK retries its FIN, then dies silently."""
import os

import pytest

from timewait.experiments import run
from timewait.experiments.orphan_retries import effective_retries, predict


@pytest.mark.live
@pytest.mark.parametrize("retries", [1, 2])
def test_the_orphan_sends_a_loss_probe_then_backs_off_and_gives_up(full_tier, retries):
    r = run("orphan-retries", retries=retries)
    fins, lifetime = predict(retries, r.first_rto_s)
    assert r.fin_transmissions == fins == retries + 3
    assert r.loss_probes == 1
    assert r.backoff == [1, 1] + [2 ** k for k in range(1, retries + 1)]
    assert r.lifetime_rtos == 2 ** (retries + 2)
    assert not r.rst_sent
    assert r.counters.get("TCPAbortOnTimeout") == 1
    # timers fire on jiffy boundaries: allow a few per cent either side of the prediction
    assert lifetime * 0.95 <= r.lifetime_s < lifetime * 1.2 + 0.3


@pytest.mark.live
@pytest.mark.skipif(not os.environ.get("TIMEWAIT_SLOW"),
                    reason="takes about 105 s; set TIMEWAIT_SLOW=1 to run it")
def test_zero_means_eight(full_tier):
    r = run("orphan-retries", retries=0)
    assert r.effective_retries == 8
    assert r.fin_transmissions == predict(8, r.first_rto_s)[0]


def test_zero_retries_means_the_kernel_default_of_eight():
    assert effective_retries(0) == 8
    assert predict(0) == predict(8)


@pytest.mark.parametrize("bad", [{"retries": -1}, {"retries": 16}, {"retries": 1.5},
                                 {"retries": True}, {"retries": "2"}])
def test_bad_options_are_rejected(bad):
    with pytest.raises(ValueError):
        run("orphan-retries", **bad)
