"""held-last-ack: a LAST_ACK socket its application holds gives up after tcp_retries2."""

import pytest

from timewait.experiments import run
from timewait.experiments.held_last_ack import limit_s, predict


@pytest.mark.live
@pytest.mark.parametrize("retries2", [1, 2, 3])
def test_the_held_socket_retries_its_fin_until_tcp_retries2_is_used_up(full_tier, retries2):
    r = run("held-last-ack", retries2=retries2)
    fins, lifetime = predict(retries2, r.first_rto_s)
    assert r.namespace_default == 15
    assert r.last_ack_state == "LAST_ACK" and r.last_ack_timer == "retransmit"
    assert r.fin_transmissions == r.predicted_fins == fins == retries2 + 3
    assert r.backoff == [1, 1] + [2**k for k in range(1, retries2 + 1)]
    assert r.end_state == "CLOSED" and r.socket_error == "ETIMEDOUT"
    assert not r.rst_sent
    assert r.counters.get("TCPAbortOnTimeout") == 1
    # timers fire on jiffy boundaries: allow a few per cent either side of the prediction
    assert lifetime * 0.95 <= r.lifetime_s < lifetime * 1.2 + 0.3


def test_the_limit_is_tcp_model_timeout_and_15_gives_924_6_s():
    assert [limit_s(k) for k in (1, 2, 3)] == [0.6, 1.4, 3.0]
    assert limit_s(9) == 204.6  # the last doubling
    assert limit_s(15) == 924.6  # the default: 204.6 s plus six TCP_RTO_MAX of 120 s
    assert [predict(k)[0] for k in (1, 2, 3)] == [4, 5, 6]
    assert [predict(k, 0.2)[1] for k in (1, 2, 3)] == pytest.approx([1.6, 3.2, 6.4])


@pytest.mark.parametrize("bad", [0, 7, 1.5, True, "2"])
def test_bad_options_are_rejected_naming_the_option_and_its_range(bad):
    with pytest.raises(ValueError, match="retries2: must be between 1 and 6"):
        run("held-last-ack", retries2=bad)
