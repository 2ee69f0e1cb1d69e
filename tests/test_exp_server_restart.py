"""server-restart: the new server binds a port in TIME_WAIT only if both sockets set SO_REUSEADDR."""
import pytest

from timewait.experiments import run
from timewait.tiers import detect_tier

pytestmark = pytest.mark.live

MATRIX = [(o, n) for o in (False, True) for n in (False, True)]


def check(r, old, new):
    assert r.time_wait_on_server_port
    if old and new:
        assert r.bind_error is None and r.new_server_accepts is True
    else:
        assert r.bind_error == "EADDRINUSE" and r.new_server_accepts is None


@pytest.mark.parametrize("old,new", MATRIX)
def test_in_a_private_namespace(full_tier, old, new):
    check(run("server-restart", old_reuseaddr=old, new_reuseaddr=new), old, new)


@pytest.mark.parametrize("old,new", MATRIX)
def test_on_the_host_loopback(monkeypatch, old, new):
    if not detect_tier().at_least("host"):
        pytest.skip(f"needs Linux sockets; this machine is {detect_tier()}")
    monkeypatch.setenv("TIMEWAIT_TIER", "host")
    r = run("server-restart", old_reuseaddr=old, new_reuseaddr=new)
    assert r.tier == "host" and not r.recorded
    check(r, old, new)


@pytest.mark.parametrize("bad", [{"old_reuseaddr": 1}, {"new_reuseaddr": "no"}, {"port": 5000}])
def test_bad_options_are_rejected(bad):
    with pytest.raises(ValueError):
        run("server-restart", **bad)
