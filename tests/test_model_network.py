"""The network: loss, deterministic drops, delay bounded by the MSL, copies, seeds."""

import pytest

from timewait.model.endpoint import Packet
from timewait.model.network import Drop, Hold, LinkConfig, Network
from timewait.model.scheduler import Scheduler


def make(link, seed=0, msl=30.0):
    sched = Scheduler(seed)
    arrived = []
    net = Network(
        sched,
        {("client", "server"): link, ("server", "client"): LinkConfig()},
        msl,
        lambda p: arrived.append((sched.now, p)),
    )
    return sched, net, arrived


def send(sched, net, n, flags="ACK"):
    for i in range(n):
        sched.at(i * 1.0, net.send, Packet("client", "server", flags, i, 0))
    sched.run()


def test_loss_rate_is_close_to_the_probability_and_repeatable():
    counts = []
    for seed in (1, 1, 2):
        sched, net, arrived = make(LinkConfig(loss=0.25), seed)
        send(sched, net, 4000)
        counts.append(len(arrived))
    assert counts[0] == counts[1] != counts[2]
    assert 2850 < counts[0] < 3150


def test_drop_the_nth_matching_segment_and_record_it_as_dropped():
    sched, net, arrived = make(LinkConfig(drops=(Drop("ACK", (2, 3)),)))
    send(sched, net, 5)
    assert [p.seq for _, p in arrived] == [0, 3, 4]
    assert [s.note for s in net.trace()] == ["", "dropped", "dropped", "", ""]


def test_delay_never_exceeds_the_msl():
    sched, net, arrived = make(LinkConfig(delay=0.5, jitter=1.5, distribution="exponential"), msl=2.0)
    send(sched, net, 500)
    delays = [t - p.seq for t, p in arrived]
    assert max(delays) == pytest.approx(2.0) and min(delays) >= 0.5  # the tail is cut at the MSL
    assert all(d <= 2.0 + 1e-9 for d in delays)


def test_duplicates_arrive_twice_and_are_recorded_on_arrival():
    sched, net, arrived = make(LinkConfig(duplicate=1.0, jitter=0.01))
    send(sched, net, 3)
    assert len(arrived) == 6
    assert sum(s.note == "duplicate" for s in net.trace()) == 3


def test_reordering_lets_a_later_segment_overtake():
    sched = Scheduler(0)
    arrived = []
    net = Network(
        sched,
        {
            ("client", "server"): LinkConfig(reorder=1.0, reorder_delay=0.05),
            ("server", "client"): LinkConfig(),
        },
        30.0,
        lambda p: arrived.append(p.seq),
    )
    net.send(Packet("client", "server", "ACK", 1, 0))
    net.links[("client", "server")].reorder = 0.0
    sched.at(0.01, net.send, Packet("client", "server", "ACK", 2, 0))
    sched.run()
    assert arrived == [2, 1]


def test_a_held_copy_arrives_as_an_old_duplicate():
    sched, net, arrived = make(LinkConfig(holds=(Hold("PSH|ACK", 10.0),)))
    send(sched, net, 1, flags="PSH|ACK")
    assert [round(t, 6) for t, _ in arrived] == [0.001, 10.0]
    assert [p.note for _, p in arrived] == ["", "old duplicate"]


@pytest.mark.parametrize(
    "link,needle",
    [
        (LinkConfig(loss=1.5), "loss: must be between 0 and 1, got 1.5"),
        (LinkConfig(delay=40.0), "delay: must be between 0 and the MSL"),
        (LinkConfig(holds=(Hold("ACK", 31.0),)), "hold"),
        (LinkConfig(distribution="pareto"), "distribution"),
    ],
)
def test_invalid_links_are_named(link, needle):
    with pytest.raises(ValueError, match=needle):
        make(link)


def test_scheduler_runs_same_time_events_in_scheduling_order():
    sched, order = Scheduler(), []
    for i in range(5):
        sched.at(1.0, order.append, i)
    t = sched.at(1.0, order.append, "cancelled")
    t.cancel()
    sched.run()
    assert order == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="t: must not be before now"):
        sched.at(0.5, order.append, 9)
