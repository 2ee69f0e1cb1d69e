"""port-defaults: a fresh namespace's settings for port choice and TIME_WAIT reuse."""

import pytest

from timewait.experiments import run

live = pytest.mark.live


@live
def test_a_fresh_namespace_has_loopback_only_reuse_after_one_second(full_tier):
    values = run("port-defaults").sysctls
    assert values["net.ipv4.tcp_tw_reuse"] == "2"
    assert values["net.ipv4.ip_local_port_range"] == "32768 60999"
    assert values["net.ipv4.tcp_timestamps"] == "1"
    # an older kernel has no tcp_tw_reuse_delay file: the experiment reports None
    assert values["net.ipv4.tcp_tw_reuse_delay"] in ("1000", None)


def test_port_defaults_takes_no_options():
    with pytest.raises(ValueError, match="ports"):
        run("port-defaults", ports=4)
