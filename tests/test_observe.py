"""Reading the socket table and counters, on fixtures whose answers are known."""

import pytest

from timewait import observe
from timewait.observe import (
    counter_delta,
    normalise_ss_row,
    parse_proc_net_tcp,
    ss_like_rows,
    ss_rows,
    ss_text,
)

PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1388 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3927 1 0000000000000000 100 0 0 10 0
   1: 0100007F:9C40 0100007F:1388 06 00000000:00000000 03:000016CE 00000000     0        0 0 3 0000000000000000
   2: 0100007F:1388 0100007F:9C41 09 00000001:00000000 01:00000014 00000003  1000        0 4211 1 0000000000000000 20 4 0 10 -1
"""  # noqa: E501 (the kernel's lines as it prints them)
PROC_NET_TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0000000000000000FFFF00000100007F:1F90 0000000000000000FFFF00000100007F:D431 08 00000000:00000005 00:00000000 00000000  1000        0 5 1 0
   1: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 6 1 0
"""  # noqa: E501 (the kernel's lines as it prints them)


def test_time_wait_socket_with_its_timer():
    socks = parse_proc_net_tcp(PROC_NET_TCP, clock_ticks=100)
    tw = socks[1]
    assert (tw.local, tw.remote, tw.state) == (("127.0.0.1", 40000), ("127.0.0.1", 5000), "TIME_WAIT")
    assert tw.timer == "timewait"
    assert abs(tw.expires_s - 58.38) < 1e-9


def test_listen_and_last_ack_with_retransmissions():
    socks = parse_proc_net_tcp(PROC_NET_TCP, clock_ticks=100)
    assert socks[0].state == "LISTEN" and socks[0].timer == "off" and socks[0].expires_s == 0
    last_ack = socks[2]
    assert last_ack.state == "LAST_ACK"
    assert (last_ack.timer, last_ack.expires_s, last_ack.retransmits) == ("retransmit", 0.2, 3)
    assert last_ack.send_queue == 1


def test_ipv6_and_ipv4_mapped_addresses():
    socks = parse_proc_net_tcp(PROC_NET_TCP6, clock_ticks=100)
    assert socks[0].local == ("127.0.0.1", 8080) and socks[0].state == "CLOSE_WAIT"
    assert socks[0].recv_queue == 5
    assert socks[1].local == ("::1", 22) and socks[1].state == "LISTEN"


def test_ss_text_rounds_timers_up_like_ss():
    text = ss_text(parse_proc_net_tcp(PROC_NET_TCP, clock_ticks=100))
    assert "TIME_WAIT" in text and "timewait (59 s)" in text
    assert text.splitlines()[0].split()[0] == "State"


def test_counter_delta_keeps_only_what_moved():
    before = {"TW": 3, "PAWSEstab": 1, "Tcp:OutRsts": 0}
    after = {"TW": 5, "PAWSEstab": 1, "Tcp:OutRsts": 2}
    assert counter_delta(before, after) == {"TW": 2, "Tcp:OutRsts": 2}


def test_ss_rows_are_normalised_to_single_spaces_and_no_time_left():
    row = "1      1      127.0.0.1:5000 127.0.0.1:40000 timer:(on,208ms,1)"
    assert normalise_ss_row(row) == "1 1 127.0.0.1:5000 127.0.0.1:40000 timer:(on,<t>,1)"
    assert (
        normalise_ss_row("0 0 127.0.0.1:40000 127.0.0.1:5000 timer:(timewait,59sec,0)")
        == "0 0 127.0.0.1:40000 127.0.0.1:5000 timer:(timewait,<t>,0)"
    )
    assert normalise_ss_row("1  0  127.0.0.1:5000 127.0.0.1:40000") == "1 0 127.0.0.1:5000 127.0.0.1:40000"


def test_without_ss_the_same_rows_come_from_proc_net_tcp():
    socks = parse_proc_net_tcp(PROC_NET_TCP, clock_ticks=100)
    assert ss_like_rows(socks, "last-ack") == ["0 1 127.0.0.1:5000 127.0.0.1:40001 timer:(on,<t>,3)"]
    assert ss_like_rows(socks, "time-wait") == ["0 0 127.0.0.1:40000 127.0.0.1:5000 timer:(timewait,<t>,0)"]
    assert ss_like_rows(socks, "close-wait") == []


def test_ss_rows_says_none_when_ss_is_missing(monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)
    monkeypatch.setattr(observe.os.path, "exists", lambda path: False)
    assert ss_rows("last-ack") is None


def test_ss_rows_rejects_a_state_ss_does_not_know():
    with pytest.raises(ValueError, match="state: must be one of established, .*last-ack"):
        ss_rows("LAST_ACK")
