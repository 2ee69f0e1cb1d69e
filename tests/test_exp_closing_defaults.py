"""closing-defaults: a fresh namespace's settings for the closing states, read, not assumed."""

import pytest

from timewait.experiments import run
from timewait.experiments.closing_defaults import CLOSING_SYSCTLS

live = pytest.mark.live


@live
def test_a_fresh_namespace_has_the_kernels_closing_defaults(full_tier):
    values = run("closing-defaults").sysctls
    assert list(values) == list(CLOSING_SYSCTLS)
    assert values["net.ipv4.tcp_fin_timeout"] == "60"
    assert values["net.ipv4.tcp_orphan_retries"] == "0"
    assert values["net.ipv4.tcp_retries2"] == "15"
    assert values["net.ipv4.tcp_rfc1337"] == "0"


@live
def test_the_time_wait_limit_defaults_to_half_the_connection_hash(full_tier):
    r = run("closing-defaults")
    assert r.ehash_entries < 0  # a new namespace shares the initial namespace's table
    assert r.max_tw_buckets == -r.ehash_entries // 2
    assert r.tw_buckets_half_the_hash is True
    assert str(r.max_tw_buckets) not in r.summary()  # it differs from machine to machine


def test_a_setting_the_kernel_lacks_is_reported_as_none():
    from timewait.experiments.common import read_defaults

    class FakeLab:
        def step(self, name):
            pass

        def sysctl_exists(self, name):
            return name != "net.ipv4.tcp_gone"

        def sysctl(self, name):
            return "4096\t87380   6291456\n"

    assert read_defaults(FakeLab(), ("net.ipv4.tcp_rmem", "net.ipv4.tcp_gone")) == {
        "net.ipv4.tcp_rmem": "4096 87380 6291456",
        "net.ipv4.tcp_gone": None,
    }


def test_closing_defaults_takes_no_options():
    with pytest.raises(ValueError, match="ports"):
        run("closing-defaults", ports=4)
