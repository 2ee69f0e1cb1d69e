"""The lab engine: isolation, teardown, timeouts, tiers and recordings."""

import json
import os
import subprocess

import pytest

from timewait import experiments, sandbox
from timewait.experiments import base
from timewait.faults import Match
from timewait.tiers import detect_tier


def _host_state():
    """What the experiments must never change on the host."""
    names = [
        "tcp_max_tw_buckets",
        "tcp_timestamps",
        "tcp_tw_reuse",
        "tcp_fin_timeout",
        "tcp_orphan_retries",
        "tcp_rfc1337",
        "ip_local_port_range",
    ]
    state = {n: open(f"/proc/sys/net/ipv4/{n}").read() for n in names}
    if os.geteuid() == 0 and subprocess.run(["which", "nft"], capture_output=True).returncode == 0:
        state["nft"] = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout
    state["ports"] = sorted(
        row.split()[1]
        for row in open("/proc/net/tcp").read().splitlines()[1:]
        if row.split()[1].endswith((":1388", ":9C40"))
    )
    return state


def _children():
    out = subprocess.run(
        ["ps", "-o", "pid=,args=", "--ppid", str(os.getpid())], capture_output=True, text=True
    ).stdout
    return [line for line in out.splitlines() if "timewait.sandbox" in line]


def test_an_experiment_leaves_the_host_untouched(full_tier):
    before = _host_state()
    result = experiments.run("four-way-close")
    assert result.end_states["client"] == "TIME_WAIT"
    assert _host_state() == before
    assert _children() == []


def test_a_failing_body_is_reported_and_torn_down(full_tier):
    with pytest.raises(sandbox.ExperimentFailed, match="ZeroDivisionError"):
        sandbox.run_body("tests.engine_bodies:fails", {}, timeout=20)
    assert _children() == []


def test_a_hanging_body_is_killed_and_the_step_named(full_tier):
    with pytest.raises(sandbox.ExperimentTimeout, match="step 'waiting for a peer that never"):
        sandbox.run_body("tests.engine_bodies:hangs", {}, timeout=3)
    assert _children() == []


def test_sysctls_are_set_inside_only(full_tier):
    host = open("/proc/sys/net/ipv4/tcp_fin_timeout").read().strip()
    inside = sandbox.run_body(
        "tests.engine_bodies:read_sysctl",
        {"name": "net.ipv4.tcp_fin_timeout"},
        sysctls={"net.ipv4.tcp_fin_timeout": 7},
        timeout=20,
    )
    assert inside == {"value": "7"}
    assert open("/proc/sys/net/ipv4/tcp_fin_timeout").read().strip() == host


def test_bad_sysctl_values_name_the_sysctl_and_range(full_tier):
    with pytest.raises(ValueError, match=r"net.ipv4.tcp_rfc1337: must be between 0 and 1"):
        sandbox.run_body(
            "tests.engine_bodies:read_sysctl",
            {"name": "net.ipv4.tcp_rfc1337"},
            sysctls={"net.ipv4.tcp_rfc1337": 5},
            timeout=20,
        )


def test_drop_counts_exactly_and_the_trace_marks_the_dropped_segment(full_tier):
    out = sandbox.run_body("tests.engine_bodies:drop_first_data", {}, timeout=20)
    assert out["dropped"] == 1
    notes = [(s["flags"], s["note"]) for s in out["trace"] if s["flags"] == "PSH|ACK"]
    assert notes[0] == ("PSH|ACK", "dropped")
    assert notes[1] == ("PSH|ACK", "")  # the retransmission got through
    assert out["received"] == "hello"


@pytest.mark.parametrize("family, address, ethertype", [(4, "127.0.0.1", "0800"), (6, "::1", "86dd")])
def test_held_segment_is_delivered_later_with_a_valid_checksum(full_tier, family, address, ethertype):
    # No tail loss probe, so the sender's first retransmission waits at least 200 ms.
    out = sandbox.run_body(
        "tests.engine_bodies:hold_and_deliver",
        {"family": family},
        timeout=20,
        sysctls={"net.ipv4.tcp_early_retrans": 0},
    )
    assert out["held"] == 1
    assert out["received"] == "hello"
    # the held original and our late copy; no retransmission was needed
    assert out["data_segments"] == [["PSH|ACK", "held"], ["PSH|ACK", "delivered late"]]
    # over the family asked for: every frame and both ends of the trace
    assert out["addresses"] == [address] and out["ethertypes"] == [ethertype]
    # the raw socket sent the IP header as captured (addresses, hop limit, flow label...)
    assert out["same_ip_header"]


def test_invalid_options_name_the_option_and_its_range():
    with pytest.raises(ValueError, match=r"closer: must be one of client, server, got 'nobody'"):
        experiments.run("four-way-close", closer="nobody")
    with pytest.raises(ValueError, match=r"half_close: must be True or False"):
        experiments.run("four-way-close", half_close="yes")
    with pytest.raises(ValueError, match=r"color: not an option of four-way-close"):
        experiments.run("four-way-close", color="red")
    with pytest.raises(ValueError, match=r"experiment: must be one of"):
        experiments.run("five-way-close")
    with pytest.raises(ValueError, match=r"src_port: must be between 1 and 65535"):
        Match(src_port=70000)


def test_a_forced_lower_tier_shows_the_recording_with_a_notice(monkeypatch):
    monkeypatch.setenv("TIMEWAIT_TIER", "none")
    result = experiments.run("four-way-close", closer="server")
    assert result.recorded is True and result.tier == "none"
    assert result.notice.startswith("[recorded on Linux ")
    assert "TIMEWAIT_TIER=none" in result.notice
    assert result.summary().splitlines()[0] == result.notice
    assert result.end_states == {"client": "CLOSED", "server": "TIME_WAIT"}
    assert result.trace.flag_sequence()[-1] == ("server", "ACK")


def test_every_experiment_has_a_recording_for_every_variant():
    for name, exp in base.REGISTRY.items():
        path = base.recording_path(name)
        assert path.exists(), f"{name}: no recording; run `make recordings` on a full-tier machine"
        data = json.loads(path.read_text())
        stored = {base.params_key(r["params"]) for r in data["runs"]}
        for variant in exp.variants:
            assert base.params_key(exp.check(variant)) in stored, (name, variant)
        assert data["kernel"].startswith("Linux ") and data["date"]


def test_tier_cannot_be_raised_and_rejects_nonsense(monkeypatch):
    monkeypatch.setenv("TIMEWAIT_TIER", "bogus")
    with pytest.raises(ValueError, match="TIMEWAIT_TIER: must be one of none, host, full"):
        detect_tier()


def test_a_choice_must_match_in_type_as_well_as_value():
    # 1.0 == 1 and True == 1 in Python; neither is the integer choice 1.
    from timewait.experiments import get

    exp = get("fixed-port-reconnect")
    assert exp.check({"tw_reuse": 1})["tw_reuse"] == 1
    for bad in (1.0, True, "1"):
        with pytest.raises(ValueError, match=r"^tw_reuse: must be one of None, 0, 1, 2"):
            exp.check({"tw_reuse": bad})


def test_teardown_aborts_the_sockets_a_closed_experiment_leaves_in_its_namespace(full_tier):
    out = sandbox.run_body("tests.engine_bodies:orphan_left_behind", {}, timeout=20)
    assert out["before"] == ["LAST_ACK", "TIME_WAIT"]  # would live on for up to two minutes
    assert out["after"] == []


@pytest.mark.parametrize("missing_until, attempts", [(0, 1), (2, 3), (9, 3)])
def test_a_run_whose_instrument_missed_is_made_again_at_most_twice(
    full_tier, tmp_path, monkeypatch, missing_until, attempts
):
    from dataclasses import dataclass

    @dataclass(kw_only=True)
    class Attempts(base.ExperimentResult):
        attempt: int = base.shown()

    path = tmp_path / "attempts"
    exp = base.Experiment(
        name="counts-attempts",
        summary="counts its own runs",
        params=(base.Param("path", str, str(path), "file to count in"),),
        body="tests.engine_bodies:counts_attempts",
        result=Attempts,
        missed=lambda p, data: "no reading" if data["attempt"] <= missing_until else "",
    )
    monkeypatch.setitem(base.REGISTRY, exp.name, exp)
    r = experiments.run("counts-attempts")
    assert r.attempt == attempts
    assert path.read_text().count("run") == attempts
