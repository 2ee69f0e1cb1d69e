"""server-restart: which old sockets stop a new server from listening on the same port.

The rule being checked is inet_bind_conflict() in net/ipv4/inet_connection_sock.c: an old
socket on the port gives way to a new bind() only if both set SO_REUSEADDR and the old one is
not listening, or both set SO_REUSEPORT (same user, or the old one in TIME_WAIT).
"""

import pytest

from timewait.experiments import get, run
from timewait.experiments.common import host_has_ipv6_loopback
from timewait.experiments.server_restart import (
    HOLDERS,
    MATRIX,
    matrix_figure,
    matrix_table,
)
from timewait.tiers import detect_tier

pytestmark = pytest.mark.live

ON_PORT = {"time-wait": ["TIME_WAIT"], "established": ["ESTABLISHED"], "listener": ["LISTEN"], "nothing": []}


def expected_to_listen(held_by, old_reuseaddr, new_reuseaddr, reuseport, family=4):
    if held_by == "nothing" or reuseport:
        return True
    return held_by != "listener" and old_reuseaddr and new_reuseaddr


def check(r):
    p = r.params
    assert r.sockets_on_port == ON_PORT[p["held_by"]]
    assert r.time_wait_on_server_port == (p["held_by"] == "time-wait")
    if expected_to_listen(**p):
        assert (r.error, r.failed_at, r.new_server_accepts) == (None, None, True)
        assert r.outcome == "listens"
        # the new listener joins the old sockets: bind() sharing the port removes none
        assert r.sockets_after_listen == sorted(ON_PORT[p["held_by"]] + ["LISTEN"])
    else:
        assert (r.error, r.failed_at, r.new_server_accepts) == ("EADDRINUSE", "bind", None)
        assert r.outcome == "EADDRINUSE at bind" and r.sockets_after_listen == []


def label(p):
    return "-".join([p["held_by"]] + [k for k in ("old_reuseaddr", "new_reuseaddr", "reuseport") if p[k]])


@pytest.mark.parametrize("params", MATRIX, ids=label)
def test_in_a_private_namespace(full_tier, params):
    r = run("server-restart", **params)
    check(r)
    assert r.addresses_on_port == ["127.0.0.1"]


@pytest.mark.parametrize("params", MATRIX, ids=label)
def test_over_ipv6_the_rule_is_the_same_on_1(full_tier, params):
    r = run("server-restart", family=6, **params)
    check(r)
    assert r.addresses_on_port == ["::1"]  # every socket on the server's port, old and new


HOST_CASES = [
    {"held_by": "time-wait", "old_reuseaddr": o, "new_reuseaddr": n, "reuseport": False}
    for o in (False, True)
    for n in (False, True)
] + [
    {"held_by": h, "old_reuseaddr": False, "new_reuseaddr": False, "reuseport": True}
    for h in ("established", "listener")
]


@pytest.mark.parametrize("params", HOST_CASES, ids=label)
def test_on_the_host_loopback(monkeypatch, params):
    if not detect_tier().at_least("host"):
        pytest.skip(f"needs Linux sockets; this machine is {detect_tier()}")
    monkeypatch.setenv("TIMEWAIT_TIER", "host")
    r = run("server-restart", **params)
    assert r.tier == "host" and not r.recorded
    check(r)


@pytest.mark.parametrize("params", HOST_CASES[1:4:2], ids=label)
def test_over_ipv6_on_the_host_loopback(monkeypatch, params):
    if not detect_tier().at_least("host") or not host_has_ipv6_loopback():
        pytest.skip("needs Linux sockets and ::1 on the host's lo")
    monkeypatch.setenv("TIMEWAIT_TIER", "host")
    r = run("server-restart", family=6, **params)
    assert r.tier == "host" and not r.recorded
    check(r)
    assert r.addresses_on_port == ["::1"]


def test_the_recorded_ipv6_run_shows_time_wait_on_1_given_way(monkeypatch):
    monkeypatch.setenv("TIMEWAIT_TIER", "none")
    r = run("server-restart", held_by="time-wait", old_reuseaddr=True, new_reuseaddr=True, family=6)
    assert r.recorded and r.addresses_on_port == ["::1"]
    check(r)
    assert r.summary().splitlines()[1].endswith("reuseport=False, family=6)")


def test_the_recorded_matrix_is_the_whole_matrix_and_one_ipv6_run():
    variants = get("server-restart").variants
    assert variants[: len(MATRIX)] == MATRIX
    assert [{**v, "family": 4} for v in variants[len(MATRIX) :]] == [
        {
            "held_by": "time-wait",
            "old_reuseaddr": True,
            "new_reuseaddr": True,
            "reuseport": False,
            "family": 4,
        }
    ]
    assert variants[-1]["family"] == 6
    assert len(MATRIX) == len(set(map(label, MATRIX))) == 4 * 4 + 4
    assert {p["held_by"] for p in MATRIX} == set(HOLDERS)


def test_recorded_outcomes_follow_the_rule(monkeypatch):
    monkeypatch.setenv("TIMEWAIT_TIER", "none")
    results = [run("server-restart", **p) for p in MATRIX]
    for r in results:
        assert r.recorded
        check(r)
    table = matrix_table(results).splitlines()
    assert len(table) == 1 + len(MATRIX)
    assert table[4].split() == ["time-wait", "yes", "yes", "-", "listens"]
    assert table[12].split() == ["listener", "yes", "yes", "-", "EADDRINUSE", "at", "bind"]
    fig, alt = matrix_figure(results)
    assert len(fig.axes[0].patches) == len(MATRIX)
    assert "port held by listener: no option: EADDRINUSE at bind" in alt
    assert "REUSEADDR both: listens" in alt and "REUSEPORT both: listens" in alt


@pytest.mark.parametrize(
    "bad",
    [
        {"old_reuseaddr": 1},
        {"new_reuseaddr": "no"},
        {"port": 5000},
        {"held_by": "close-wait"},
        {"held_by": ""},
        {"reuseport": 1},
        {"family": 5},
    ],
)
def test_bad_options_are_rejected(bad):
    with pytest.raises(ValueError):
        run("server-restart", **bad)
