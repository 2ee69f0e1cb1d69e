"""orphan-retries: an orphaned LAST_ACK retries its FIN, then dies silently."""

import os

import pytest

from timewait.experiments import run
from timewait.experiments.orphan_retries import predict

LAST_ACK_ROW = "0 1 127.0.0.1:5000 127.0.0.1:40000 timer:(on,<t>,1)"


@pytest.fixture(scope="module")
def one_retry(full_tier):
    return run("orphan-retries", retries=1)


@pytest.mark.live
@pytest.mark.parametrize("retries", [1, 2, 3])
def test_the_orphan_sends_a_loss_probe_then_backs_off_and_gives_up(full_tier, retries):
    r = run("orphan-retries", retries=retries)
    fins, lifetime = predict(retries, r.first_rto_s)
    assert r.fin_transmissions == fins == retries + 3
    assert r.loss_probes == 1
    assert r.backoff == [1, 1] + [2**k for k in range(1, retries + 1)]
    assert r.end_state == "CLOSED"
    assert r.lifetime_rtos == 2 ** (retries + 2)
    assert not r.rst_sent
    assert r.counters.get("TCPAbortOnTimeout") == 1
    # timers fire on jiffy boundaries: allow a few per cent either side of the prediction
    assert lifetime * 0.95 <= r.lifetime_s < lifetime * 1.2 + 0.3


@pytest.mark.live
def test_a_fresh_namespace_starts_with_tcp_orphan_retries_zero(one_retry):
    r = one_retry
    assert r.namespace_default == 0


@pytest.mark.live
def test_the_passive_closer_sits_in_last_ack_with_its_retransmission_timer_running(one_retry):
    r = one_retry
    assert r.last_ack_state == "LAST_ACK"
    assert r.last_ack_timer == "retransmit"
    # looked at after the FIN, the loss probe and one timeout retransmission
    assert r.fins_before_last_ack == 3
    assert r.last_ack_retransmits == 1  # the loss probe is not counted as a retransmission
    assert "LAST_ACK" in r.last_ack and "retransmit" in r.last_ack


@pytest.mark.live
def test_ss_inside_the_namespace_lists_each_closing_state(one_retry):
    r = one_retry
    assert r.ss_source == "ss"
    assert r.ss_rows == {
        # the server has read the client's FIN and not closed yet
        "close-wait": ["0 0 127.0.0.1:5000 127.0.0.1:40000"],
        # the client, orphaned by close(), waits for the server's FIN under tcp_fin_timeout
        "fin-wait-2": ["0 0 127.0.0.1:40000 127.0.0.1:5000 timer:(timewait,<t>,0)"],
        # the server's orphan: one byte (its FIN) unacknowledged, retransmission timer on
        "last-ack": [LAST_ACK_ROW],
    }
    assert r.ss_output.splitlines()[0] == "$ ss -Htano state close-wait"


@pytest.mark.live
def test_zero_is_not_zero_retries_the_orphan_outlives_every_small_setting(full_tier):
    r = run("orphan-retries", retries=0, watch=8)
    assert r.namespace_default == 0
    assert r.end_state == "LAST_ACK" and r.lifetime_s is None  # still alive when watch ended
    assert 8 <= r.watched_s < 9
    most_of_1_to_3 = max(predict(k, r.first_rto_s)[0] for k in (1, 2, 3))
    assert r.fin_transmissions == 7 > most_of_1_to_3
    assert r.backoff == [1, 1, 2, 4, 8, 16]
    assert r.end_retransmits == 5  # the kernel's own count agrees with the capture
    assert r.counters.get("TCPAbortOnTimeout") is None and not r.rst_sent


@pytest.mark.live
@pytest.mark.skipif(
    not os.environ.get("TIMEWAIT_SLOW"), reason="takes about 105 s; set TIMEWAIT_SLOW=1 to run it"
)
def test_zero_behaves_like_eight_until_it_gives_up(full_tier):
    r = run("orphan-retries", retries=0)
    fins, lifetime = predict(8, r.first_rto_s)
    assert r.end_state == "CLOSED"
    assert r.fin_transmissions == fins == 10
    assert r.lifetime_rtos == 512
    assert lifetime * 0.95 <= r.lifetime_s < lifetime * 1.2 + 0.3
    assert r.counters.get("TCPAbortOnTimeout") == 1 and not r.rst_sent


def test_the_rule_gives_retries_plus_three_fins_and_doubles_the_lifetime():
    assert [predict(k)[0] for k in (1, 2, 3)] == [4, 5, 6]
    lifetimes = [predict(k, 0.2)[1] for k in (1, 2, 3)]
    assert lifetimes == pytest.approx([1.6, 3.2, 6.4])


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"retries": -1}, "retries: must be between 0 and 15"),
        ({"retries": 16}, "retries: must be between 0 and 15"),
        ({"retries": 1.5}, "retries: must be between 0 and 15"),
        ({"retries": True}, "retries: must be between 0 and 15"),
        ({"retries": "2"}, "retries: must be between 0 and 15"),
        ({"watch": -1}, "watch: must be between 0 and 150"),
        ({"watch": 151}, "watch: must be between 0 and 150"),
        ({"watch": "5"}, "watch: must be between 0 and 150"),
    ],
)
def test_bad_options_are_rejected_naming_the_option_and_its_range(bad, message):
    with pytest.raises(ValueError, match=message):
        run("orphan-retries", **bad)
