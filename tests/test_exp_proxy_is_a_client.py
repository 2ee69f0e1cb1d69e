"""proxy-is-a-client: HAProxy is the client of its backend. In TCP mode it passes the
client's close on and holds TIME_WAIT towards the backend, so a few ports run out; in HTTP
modes it resets the backend connections it closes, and runs out only of ports in use at
once; keep-alive needs one backend connection; who closes first holds TIME_WAIT."""

import os
import subprocess

import pytest

from timewait import tiers
from timewait.experiments import base, get, run

FAILED = {"empty reply", "connection reset"}  # curl's view of a connection closed unanswered


@pytest.fixture(scope="module")
def topology_ok(full_tier):
    ok, why = tiers.topology_support()
    if not ok:
        pytest.skip(why)
    if not (base.program_installed("haproxy") and base.program_installed("curl")):
        pytest.skip("haproxy or curl is not installed")


def _host_state():
    """The host's port range, links, and its sockets on the experiment's ports (80, 8080,
    40000-40015): the run must change none of them."""
    ports = {80, 8080} | set(range(40000, 40016))
    sockets = []
    for line in open("/proc/net/tcp").readlines()[1:]:
        local, remote = line.split()[1:3]
        if {int(local.split(":")[1], 16), int(remote.split(":")[1], 16)} & ports:
            sockets.append((local, remote))
    return {
        "port_range": open("/proc/sys/net/ipv4/ip_local_port_range").read(),
        "links": subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout,
        "sockets": sorted(sockets),
    }


def _time_wait_at_the_first_fin(result):
    """On each leg, TIME_WAIT is held by the side that sent the first FIN, by both sides when
    they closed at once; a reset leaves none."""
    tw, front, back = result.time_wait, result.front_closes, result.back_closes
    both_front, both_back = front.get("simultaneous FIN", 0), back.get("simultaneous FIN", 0)
    assert tw["client"] == front.get("client FIN", 0) + both_front
    assert tw["proxy (client leg)"] == front.get("proxy FIN", 0) + both_front
    assert tw["proxy (backend leg)"] == back.get("proxy FIN", 0) + both_back
    assert both_back == 0
    # A SYN on a 4-tuple the backend holds in TIME_WAIT takes it over: one per proxy port.
    assert tw["backend"] == min(back.get("backend FIN", 0), result.proxy_ports_used)


def _running(pid, name):
    try:
        return name in open(f"/proc/{pid}/cmdline").read()
    except FileNotFoundError:
        return False


@pytest.fixture(scope="module")
def tcp_mode(topology_ok):
    before = _host_state()
    result = run("proxy-is-a-client", mode="tcp")
    return result, before, _host_state()


@pytest.mark.live
def test_in_tcp_mode_the_proxy_holds_time_wait_towards_the_backend_and_runs_out(tcp_mode):
    result, _, _ = tcp_mode
    _time_wait_at_the_first_fin(result)
    assert result.outcome_list[:4] == ["200"] * 4 and set(result.outcome_list[4:]) <= FAILED
    assert result.first_failure == 5 and result.backend_connections == 4
    # The proxy ends each connection it cannot serve, with a FIN or a reset.
    assert result.front_closes.get("client FIN") == 4
    assert sum(result.front_closes.get(k, 0) for k in ("proxy FIN", "proxy RST")) == 4
    assert result.back_closes == {"proxy FIN": 4}
    assert result.time_wait["proxy (backend leg)"] == 4 and result.time_wait["backend"] == 0
    assert result.proxy_time_wait_timer_s == 60
    assert result.sustainable_rate_per_s == pytest.approx(4 / 60, abs=0.001)
    assert result.request_rate_per_s > 10 * result.sustainable_rate_per_s
    # HAProxy says why: each failed request's connect() and its 3 retries found no port.
    assert result.proxy_messages == {"Connect() failed for backend app: no free ports.": 16}


@pytest.mark.live
def test_with_two_ports_the_third_request_fails(topology_ok):
    result = run("proxy-is-a-client", mode="tcp", ports=2, requests=4)
    _time_wait_at_the_first_fin(result)
    assert result.outcome_list[:2] == ["200", "200"] and result.first_failure == 3
    assert result.time_wait["proxy (backend leg)"] == 2


@pytest.mark.live
def test_in_http_server_close_mode_haproxy_resets_and_keeps_no_time_wait(topology_ok):
    result = run("proxy-is-a-client", requests=16)
    _time_wait_at_the_first_fin(result)
    assert result.outcomes == {"200": 16} and result.backend_connections == 16
    # HAProxy asks the backend to close; this backend answers and keeps the connection.
    assert result.backend_asked_to_close == 16
    assert result.back_closes == {"proxy RST": 16}
    assert result.proxy_ports_used <= 4  # ports reused at once: nothing holds them
    assert result.time_wait == {"client": 16, "proxy (client leg)": 0, "proxy (backend leg)": 0, "backend": 0}
    assert result.front_closes == {"client FIN": 16}


@pytest.mark.live
def test_with_backend_keep_alive_one_connection_carries_every_request(topology_ok):
    result = run("proxy-is-a-client", mode="keep-alive", requests=16)
    _time_wait_at_the_first_fin(result)
    assert result.outcomes == {"200": 16}
    assert result.backend_connections == 1 and result.back_closes == {"open": 1}
    assert result.backend_asked_to_close == 0
    assert result.time_wait["proxy (backend leg)"] == 0


@pytest.mark.live
def test_in_httpclose_mode_both_ends_of_the_client_leg_close_and_the_backend_leg_is_reset(topology_ok):
    result = run("proxy-is-a-client", mode="httpclose")
    _time_wait_at_the_first_fin(result)
    assert result.outcomes == {"200": 8} and result.back_closes == {"proxy RST": 8}
    assert set(result.front_closes) <= {"client FIN", "proxy FIN", "simultaneous FIN"}
    assert sum(result.front_closes.values()) == 8
    assert result.time_wait["proxy (backend leg)"] == 0 and result.time_wait["backend"] == 0


@pytest.mark.live
@pytest.mark.parametrize("mode", ["server-close", "keep-alive"])
def test_when_the_backend_closes_first_it_holds_time_wait_once_per_proxy_port(topology_ok, mode):
    result = run("proxy-is-a-client", mode=mode, backend_closes=True)
    _time_wait_at_the_first_fin(result)
    assert result.outcomes == {"200": 8} and result.back_closes == {"backend FIN": 8}
    assert result.time_wait["proxy (backend leg)"] == 0
    # The proxy reuses its ports at once; a SYN on a 4-tuple the backend holds in
    # TIME_WAIT takes it over, so the backend keeps one TIME_WAIT per proxy port used.
    assert result.backend_connections == 8 and result.proxy_ports_used < 8
    assert result.time_wait["backend"] == result.proxy_ports_used


@pytest.mark.live
def test_in_tcp_mode_the_proxy_passes_the_backend_s_close_on_and_holds_the_client_leg(topology_ok):
    result = run("proxy-is-a-client", mode="tcp", backend_closes=True)
    _time_wait_at_the_first_fin(result)
    assert result.outcomes == {"200": 8}
    assert result.front_closes == {"proxy FIN": 8} and result.back_closes == {"backend FIN": 8}
    assert result.time_wait["proxy (client leg)"] == 8 and result.time_wait["client"] == 0


@pytest.mark.live
@pytest.mark.parametrize("mode", ["server-close", "keep-alive"])
def test_requests_at_once_beyond_the_ports_get_503(topology_ok, mode):
    result = run("proxy-is-a-client", mode=mode, parallel=True)
    _time_wait_at_the_first_fin(result)
    assert result.outcomes == {"200": 4, "503": 4}
    assert result.backend_connections == 4 and result.proxy_ports_used == 4
    assert result.first_failure is None  # completion order says nothing
    assert result.proxy_messages == {"Connect() failed for backend app: no free ports.": 16}


@pytest.mark.live
def test_the_proxy_curl_and_hosts_are_gone_and_the_host_is_untouched(tcp_mode):
    result, before, after = tcp_mode
    assert after == before
    assert len(result.pids["haproxy"]) == 1 and len(result.pids["curl"]) == 8
    assert not any(_running(p, "haproxy") for p in result.pids["haproxy"])
    assert not any(_running(p, "curl") for p in result.pids["curl"])
    assert result.host_pids and not any(
        _running(p, "sleep") and os.path.exists(f"/proc/{p}") for p in result.host_pids
    )


@pytest.mark.live
def test_without_haproxy_the_recording_is_shown(topology_ok, monkeypatch):
    monkeypatch.setattr(base, "program_installed", lambda name: name != "haproxy")
    result = run("proxy-is-a-client")
    assert result.recorded and "haproxy not installed" in result.notice
    assert result.outcomes == {"200": 8}


def test_options_are_checked():
    exp = get("proxy-is-a-client")
    with pytest.raises(
        ValueError,
        match=r"mode: must be one of tcp, server-close, httpclose, "
        r"keep-alive",
    ):
        exp.check({"mode": "http"})
    with pytest.raises(ValueError, match=r"ports: must be between 1 and 16"):
        exp.check({"ports": 0})
    with pytest.raises(ValueError, match=r"requests: must be between 1 and 32"):
        exp.check({"requests": 33})
    with pytest.raises(ValueError, match=r"parallel: must be True or False"):
        exp.check({"parallel": 1})


def test_how_a_connection_ended_is_read_from_its_fins_and_resets():
    from collections import namedtuple

    from timewait.experiments.proxy_is_a_client import _closes

    V = namedtuple("V", "src dst flags seq ack length")
    c, s = ("10.0.1.2", 5000), ("10.0.1.1", 80)

    def conn(*segments):
        return [V(c, s, "SYN", 100, 0, 0), V(s, c, "SYN|ACK", 900, 101, 0)] + list(segments)

    names = ("client", "proxy")
    # The proxy's FIN first; the client's FIN acknowledges it: the proxy closed first.
    first = conn(V(s, c, "FIN|ACK", 901, 101, 0), V(c, s, "FIN|ACK", 101, 902, 0))
    assert _closes(first, 80, names) == {"proxy FIN": 1}
    # Each FIN sent before its sender had the other's: a simultaneous close.
    both = conn(V(s, c, "FIN|ACK", 901, 101, 0), V(c, s, "FIN|ACK", 101, 901, 0))
    assert _closes(both, 80, names) == {"simultaneous FIN": 1}
    # A reset after a FIN ends the connection as the reset's; a new SYN on the same
    # 4-tuple after the end is a connection of its own, still open.
    reset = conn(V(s, c, "FIN|ACK", 901, 101, 0), V(c, s, "PSH|ACK", 101, 901, 10), V(s, c, "RST", 902, 0, 0))
    assert _closes(reset + conn(), 80, names) == {"open": 1, "proxy RST": 1}
