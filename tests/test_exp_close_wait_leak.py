"""close-wait-leak: CLOSE_WAIT lasts until the application closes; the kernel runs no timer.

Under a descriptor limit the leak ends in EMFILE: each CLOSE_WAIT socket keeps its descriptor,
and once they have used up the server's RLIMIT_NOFILE, accept() fails while the clients'
connections still complete, into the listener's accept queue.
"""

import resource

import pytest

from timewait.experiments import run


@pytest.mark.live
def test_close_wait_outlives_the_peers_and_has_no_timer(full_tier):
    r = run("close-wait-leak", connections=4, hold=2, fin_timeout=1)
    assert r.close_wait_at_start == 4
    assert r.close_wait_after_hold == 4
    assert r.close_wait_timer == "off"
    assert r.client_states_after_hold == {"CLOSED": 4}
    assert r.reads_after_fin == "EOF"
    assert r.write_into_leak == "sent, then EPIPE"


@pytest.mark.live
def test_closing_on_end_of_file_leaves_no_close_wait(full_tier):
    r = run("close-wait-leak", connections=2, hold=1, server_closes=True)
    assert r.close_wait_at_start == 0 and r.close_wait_after_hold == 0
    assert r.client_states_after_hold == {"TIME_WAIT": 2}


@pytest.mark.live
def test_a_leak_under_a_descriptor_limit_ends_in_emfile(full_tier):
    r = run("close-wait-leak", connections=5, hold=1, fd_limit=8)
    # 0, 1, 2, the listener and the channel to the experiment: 3 descriptors left under 8
    assert r.server_descriptors == 5
    assert r.accepted == 3 and r.close_wait_after_hold == 3
    assert r.accept_errors == {"EMFILE": 2}
    assert r.socket_table_after_hold.count("CLOSE_WAIT") == 3


@pytest.mark.live
def test_the_clients_still_connect_into_the_accept_queue_and_get_no_answer(full_tier):
    r = run("close-wait-leak", connections=5, hold=1, fd_limit=8)
    assert r.client_connects == {"connected": 5}  # the kernel completes the handshake
    assert r.listen_queue == 2  # the listener's Recv-Q: connections nobody accepted
    assert r.reply_to_queued_request == "none within 1 s"
    rows = [line.split() for line in r.socket_table_after_hold.splitlines()[1:]]
    assert ["LISTEN", "2"] == rows[0][:2]
    # the request waits in the queued connection's receive queue
    assert ["ESTABLISHED", "8", "0", "127.0.0.1:5000", "127.0.0.1:40003"] in rows


@pytest.mark.live
def test_a_full_accept_queue_leaves_the_next_client_unanswered(full_tier):
    r = run("close-wait-leak", connections=20, hold=1, fd_limit=6)
    assert r.accepted == 1
    # a backlog of 16 holds 17 connections (the queue is full only above the backlog)
    assert r.listen_queue == 17 and r.accept_errors == {"EMFILE": 17}
    assert r.client_connects == {"connected": 18, "timed out": 1}


@pytest.mark.live
def test_a_server_that_closes_never_reaches_its_descriptor_limit(full_tier):
    r = run("close-wait-leak", connections=5, hold=1, fd_limit=8, server_closes=True)
    assert r.accepted == 5 and r.accept_errors == {}
    assert r.close_wait_after_hold == 0 and r.listen_queue == 0


@pytest.mark.live
def test_the_limit_is_the_server_process_s_alone(full_tier):
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    run("close-wait-leak", connections=4, hold=1, fd_limit=6)
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == before


@pytest.mark.live
def test_without_a_limit_the_summary_reads_as_it_always_did(full_tier):
    text = run("close-wait-leak", connections=1, hold=1).summary()
    assert text.splitlines()[0] == (
        "close-wait-leak (connections=1, hold=1, fin_timeout=1, server_closes=False)"
    )
    assert "fd_limit" not in text and "accept_errors" not in text


@pytest.mark.parametrize(
    "bad",
    [
        {"connections": 0},
        {"connections": 101},
        {"hold": 0},
        {"hold": 61},
        {"fin_timeout": 0},
        {"server_closes": 1},
        {"leak": True},
    ],
)
def test_bad_options_are_rejected(bad):
    with pytest.raises(ValueError):
        run("close-wait-leak", **bad)


@pytest.mark.parametrize("bad", [-1, 1025, 8.5, True, "8"])
def test_a_descriptor_limit_out_of_range_is_rejected_by_name(bad):
    with pytest.raises(ValueError, match=r"^fd_limit: must be between 0 and 1024, got "):
        run("close-wait-leak", fd_limit=bad)
