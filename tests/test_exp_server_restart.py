"""server-restart: which old sockets stop a new server from listening on the same port.

The rule being checked is inet_bind_conflict() in net/ipv4/inet_connection_sock.c: an old
socket on the port gives way to a new bind() only if both set SO_REUSEADDR and the old one is
not listening, or both set SO_REUSEPORT (same user, or the old one in TIME_WAIT).
"""

import pytest

from timewait.experiments import get, run
from timewait.experiments.server_restart import HOLDERS, MATRIX, matrix_figure, matrix_table
from timewait.tiers import detect_tier

pytestmark = pytest.mark.live

ON_PORT = {"time-wait": ["TIME_WAIT"], "established": ["ESTABLISHED"], "listener": ["LISTEN"], "nothing": []}


def expected_to_listen(held_by, old_reuseaddr, new_reuseaddr, reuseport):
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
    check(run("server-restart", **params))


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


def test_the_recorded_matrix_is_the_whole_matrix():
    assert get("server-restart").variants == MATRIX
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
    ],
)
def test_bad_options_are_rejected(bad):
    with pytest.raises(ValueError):
        run("server-restart", **bad)
