"""`timewait doctor`: the analysis is a pure function of a socket table and sysctls.

Synthetic tables describe the situations an on-call engineer meets; saved /proc trees
(tests/fixtures/doctor/, and ones written to tmp_path in the kernel's own format) test the
reading and the command line.
"""

import builtins
import contextlib
import contextvars
import ipaddress
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from timewait import cli
from timewait.doctor import (
    TIME_WAIT_LEN,
    diagnose,
    examine,
    measure_rates,
    parse_port_range,
    parse_reserved_ports,
    read_counters,
    read_open_counters,
    read_rate_counters,
    read_sockets,
    read_sockstat,
    read_sysctls,
    render_text,
)
from timewait.observe import SocketInfo

FIXTURES = Path(__file__).parent / "fixtures" / "doctor"

# This course machine's values (Linux 6.x defaults).
SYSCTLS = {
    "net.ipv4.tcp_tw_reuse": "2",
    "net.ipv4.tcp_tw_reuse_delay": "1000",
    "net.ipv4.tcp_timestamps": "1",
    "net.ipv4.tcp_max_tw_buckets": "131072",
    "net.ipv4.tcp_fin_timeout": "60",
    "net.ipv4.tcp_orphan_retries": "0",
    "net.ipv4.tcp_rfc1337": "0",
    "net.ipv4.ip_local_port_range": "32768\t60999",
    "net.ipv4.ip_local_reserved_ports": "",
}
RANGE_PORTS = 60999 - 32768 + 1  # 28232


def sysctls(**changes):
    out = dict(SYSCTLS)
    for short, value in changes.items():
        if value is None:
            out.pop(f"net.ipv4.{short}", None)
        else:
            out[f"net.ipv4.{short}"] = value
    return out


def sock(local, remote, state, expires=0.0, timer=None):
    if timer is None:
        timer = "timewait" if state == "TIME_WAIT" else "off"
    return SocketInfo(
        local=local,
        remote=remote,
        state=state,
        timer=timer,
        expires_s=expires,
        retransmits=0,
        send_queue=0,
        recv_queue=0,
    )


def time_wait_clients(n, source, destination, first_port=32768):
    """n client sockets in TIME_WAIT, entered evenly over the last 60 s."""
    return [
        sock((source, first_port + i), destination, "TIME_WAIT", expires=TIME_WAIT_LEN * (i + 0.5) / n)
        for i in range(n)
    ]


def advice(report, topic):
    return [a for a in report.advice if a.topic == topic]


# ---------------------------------------------------------------- port budget


def test_28000_time_wait_to_one_destination_nearly_exhausts_the_budget():
    table = time_wait_clients(28000, "10.0.0.5", ("10.0.1.20", 5432))
    report = diagnose(table, SYSCTLS)

    (b,) = report.budgets
    assert (b.source, b.destination, b.ports) == ("10.0.0.5", ("10.0.1.20", 5432), RANGE_PORTS)
    assert b.time_wait == 28000 and b.other_states == 0 and b.ports_free == 232
    assert b.ceiling_rate == pytest.approx(28232 / 60)
    assert b.estimated_rate == pytest.approx(28000 / 60)
    assert b.budget_used == pytest.approx(28000 / 28232)
    assert b.recent_rate == pytest.approx(28000 / 6 / 10, rel=0.01)
    assert b.freed_within_10s == pytest.approx(28000 / 6, rel=0.01)
    assert not b.reuse_applies  # tcp_tw_reuse=2 is for loopback only

    (adv,) = advice(report, "port_budget")
    assert adv.level == "critical" and report.advice[0] is adv
    fixes, _, not_fixes = adv.text.partition("Not fixes")
    for fix in (
        "connection pool",
        "more destination addresses",
        "IP_BIND_ADDRESS_NO_PORT",
        "tcp_tw_reuse=1",
        "tcp_timestamps",
    ):
        assert fix in fixes
    assert "SO_LINGER" not in fixes and "tcp_tw_recycle" not in fixes
    assert "SO_LINGER 0" in not_fixes and "tcp_tw_recycle" in not_fixes


def test_half_used_budget_warns_and_a_quiet_one_does_not():
    busy = diagnose(time_wait_clients(20000, "10.0.0.5", ("10.0.1.20", 443)), SYSCTLS)
    assert [a.level for a in advice(busy, "port_budget")] == ["warning"]
    quiet = diagnose(time_wait_clients(10000, "10.0.0.5", ("10.0.1.20", 443)), SYSCTLS)
    assert advice(quiet, "port_budget") == []
    assert [a.topic for a in quiet.advice] == ["ok"]


def test_each_source_destination_pair_has_its_own_budget():
    table = (
        time_wait_clients(300, "10.0.0.5", ("10.0.1.20", 443))
        + time_wait_clients(100, "10.0.0.5", ("10.0.1.21", 443))
        + time_wait_clients(50, "10.0.0.6", ("10.0.1.20", 443))
        + [sock(("10.0.0.5", 40000), ("10.0.1.20", 443), "ESTABLISHED")]
    )
    report = diagnose(table, SYSCTLS)
    got = [(b.source, b.destination, b.time_wait, b.other_states) for b in report.budgets]
    assert got == [
        ("10.0.0.5", ("10.0.1.20", 443), 300, 1),
        ("10.0.0.5", ("10.0.1.21", 443), 100, 0),
        ("10.0.0.6", ("10.0.1.20", 443), 50, 0),
    ]


def test_server_side_time_wait_spends_no_ephemeral_port():
    # A server that closes first keeps TIME_WAIT on its listening port, even one in the range.
    table = [
        sock(("0.0.0.0", 40000), ("0.0.0.0", 0), "LISTEN"),
        sock(("0.0.0.0", 443), ("0.0.0.0", 0), "LISTEN"),
    ]
    table += [sock(("10.0.0.5", 40000), ("10.9.0.1", 50000 + i), "TIME_WAIT", 30.0) for i in range(500)]
    table += [sock(("10.0.0.5", 443), ("10.9.0.2", 50000 + i), "TIME_WAIT", 30.0) for i in range(500)]
    report = diagnose(table, SYSCTLS)
    assert report.budgets == ()
    assert report.state_totals["TIME_WAIT"] == 1000
    # Grouped by the listening port, not as 1,000 client endpoints of one socket each.
    assert report.endpoints == ()
    assert [(p.port, p.time_wait, p.peers) for p in report.server_ports] == [(443, 500, 1), (40000, 500, 1)]
    (note, _) = advice(report, "server_time_wait")
    assert "500 TIME_WAIT on :443" in note.text and "costs this host no ephemeral ports" in note.text


def test_loopback_destination_with_tw_reuse_2_is_not_a_port_problem():
    table = time_wait_clients(28000, "127.0.0.1", ("127.0.0.1", 8080))
    (b,) = diagnose(table, SYSCTLS).budgets
    assert b.reuse_applies
    (adv,) = advice(diagnose(table, SYSCTLS), "port_budget")
    assert adv.level == "info" and "tcp_tw_reuse applies" in adv.text


def test_tw_reuse_needs_timestamps():
    table = time_wait_clients(100, "10.0.0.5", ("10.0.1.20", 443))
    assert diagnose(table, sysctls(tcp_tw_reuse="1")).budgets[0].reuse_applies
    report = diagnose(table, sysctls(tcp_tw_reuse="1", tcp_timestamps="0"))
    assert not report.budgets[0].reuse_applies
    assert advice(report, "timestamps")


def test_reserved_ports_shrink_the_budget():
    report = diagnose(
        time_wait_clients(10, "10.0.0.5", ("10.0.1.20", 443)),
        sysctls(ip_local_reserved_ports="40000-40999,8080,61000"),
    )
    assert report.usable_ports == RANGE_PORTS - 1000
    assert report.budgets[0].ports == RANGE_PORTS - 1000


def test_narrow_port_range_is_pointed_out():
    report = diagnose([], sysctls(ip_local_port_range="50000 50999"))
    assert report.usable_ports == 1000
    (adv,) = advice(report, "port_range")
    assert "17 new connections/s" in adv.text


# ---------------------------------------------------------------- CLOSE_WAIT, FIN_WAIT_2, limits


def test_close_wait_leak_in_a_server_names_its_listening_port():
    table = [sock(("0.0.0.0", 8080), ("0.0.0.0", 0), "LISTEN")]
    table += [
        sock(("10.0.0.5", 8080), (f"10.9.0.{i % 200 + 1}", 40000 + i), "CLOSE_WAIT") for i in range(400)
    ]
    report = diagnose(table, SYSCTLS)
    (adv,) = advice(report, "close_wait")
    assert adv.level == "warning"
    assert "400 sockets in CLOSE_WAIT" in adv.text and "local port 8080" in adv.text
    assert "has not called close()" in adv.text


def test_close_wait_leak_in_a_client_names_the_remote_endpoint():
    table = [sock(("10.0.0.5", 33000 + i), ("10.0.2.9", 6379), "CLOSE_WAIT") for i in range(30)]
    report = diagnose(table, SYSCTLS)
    (adv,) = advice(report, "close_wait")
    assert adv.level == "warning" and "30 of them with 10.0.2.9:6379" in adv.text
    assert report.endpoints[0].close_wait == 30


def test_a_few_close_wait_are_only_mentioned():
    table = [sock(("10.0.0.5", 33000 + i), ("10.0.2.9", 6379), "CLOSE_WAIT") for i in range(3)]
    (adv,) = advice(diagnose(table, SYSCTLS), "close_wait")
    assert adv.level == "info" and "if the count grows" in adv.text


def test_fin_wait_2_separates_orphaned_from_held_sockets():
    table = [
        sock(("10.0.0.5", 33000 + i), ("10.0.2.9", 80), "FIN_WAIT_2", 20.0, "timewait") for i in range(15)
    ]
    table += [sock(("10.0.0.5", 34000 + i), ("10.0.2.9", 80), "FIN_WAIT_2") for i in range(5)]
    (adv,) = advice(diagnose(table, sysctls(tcp_fin_timeout="30")), "fin_wait_2")
    assert "15 are orphaned and expire after 30 s" in adv.text
    assert "5 are still held by a process" in adv.text


def test_endpoint_counts_per_remote_address_and_port():
    table = time_wait_clients(5, "10.0.0.5", ("10.0.1.20", 443)) + [
        sock(("10.0.0.5", 33000), ("10.0.1.20", 443), "CLOSE_WAIT"),
        sock(("10.0.0.5", 33001), ("10.0.1.20", 80), "FIN_WAIT_2"),
        sock(("10.0.0.5", 33002), ("10.0.1.20", 80), "ESTABLISHED"),
    ]
    report = diagnose(table, SYSCTLS)
    got = [(e.remote, e.time_wait, e.close_wait, e.fin_wait_2) for e in report.endpoints]
    assert got == [(("10.0.1.20", 443), 5, 1, 0), (("10.0.1.20", 80), 0, 0, 1)]
    assert report.state_totals == {"TIME_WAIT": 5, "CLOSE_WAIT": 1, "ESTABLISHED": 1, "FIN_WAIT_2": 1}


def test_near_tcp_max_tw_buckets_warns():
    table = time_wait_clients(950, "10.0.0.5", ("10.0.1.20", 443))
    (adv,) = advice(diagnose(table, sysctls(tcp_max_tw_buckets="1000")), "max_tw_buckets")
    assert adv.level == "warning"
    assert advice(diagnose(table, SYSCTLS), "max_tw_buckets") == []
    (seen,) = advice(diagnose([], SYSCTLS, counters={"TCPTimeWaitOverflow": 7}), "max_tw_buckets")
    assert "7 since boot" in seen.text


def test_tw_recycle_on_an_old_kernel_is_critical():
    report = diagnose([], sysctls(tcp_tw_recycle="1", tcp_tw_reuse_delay=None))
    (adv,) = advice(report, "tw_recycle")
    assert adv.level == "critical" and "set it to 0" in adv.text


# ---------------------------------------------------------------- empty host, IPv6, sysctls


def test_empty_host():
    report = diagnose([], SYSCTLS)
    assert report.sockets == 0 and report.state_totals == {}
    assert report.endpoints == () and report.budgets == ()
    assert [a.topic for a in report.advice] == ["ok"]
    text = render_text(report)
    assert "none" in text and "no outgoing connections" in text
    assert json.loads(json.dumps(report.to_json()))["advice"][0]["topic"] == "ok"


def test_ipv6_destinations():
    table = time_wait_clients(20000, "2001:db8::2", ("2001:db8::1", 443))
    report = diagnose(table, SYSCTLS)
    assert report.budgets[0].destination == ("2001:db8::1", 443)
    assert "[2001:db8::1]:443" in render_text(report)
    assert report.to_json()["endpoints"][0]["remote"] == "[2001:db8::1]:443"
    assert advice(report, "port_budget")[0].level == "warning"
    loop = diagnose(time_wait_clients(20000, "::1", ("::1", 443)), SYSCTLS)
    assert loop.budgets[0].reuse_applies


def test_sysctl_meanings_are_accurate():
    meanings = {s.name.split(".")[-1]: s for s in diagnose([], SYSCTLS).sysctls}
    assert "loopback" in meanings["tcp_tw_reuse"].meaning
    assert "NOT change TIME_WAIT" in meanings["tcp_fin_timeout"].meaning
    assert meanings["tcp_tw_recycle"].value is None
    assert "removed in Linux 4.12" in meanings["tcp_tw_recycle"].meaning
    assert "default, 8" in meanings["tcp_orphan_retries"].meaning
    assert "28,232" in meanings["ip_local_port_range"].meaning


def test_missing_sysctls_are_reported_absent_and_defaults_assumed():
    report = diagnose([], sysctls(ip_local_port_range=None, tcp_tw_reuse_delay=None))
    rows = {s.name: s for s in report.sysctls}
    assert rows["net.ipv4.ip_local_port_range"].value is None
    assert "absent" in rows["net.ipv4.tcp_tw_reuse_delay"].meaning
    assert report.port_range == (32768, 60999) and report.usable_ports == RANGE_PORTS
    assert any("assumed" in n for n in report.notes)


@pytest.mark.parametrize(
    "name, raw",
    [
        ("ip_local_port_range", "60999 32768"),
        ("ip_local_port_range", "1024"),
        ("ip_local_port_range", "0 100"),
        ("ip_local_reserved_ports", "8080,x"),
        ("tcp_tw_reuse", "yes"),
    ],
)
def test_bad_sysctl_text_names_the_sysctl(name, raw):
    with pytest.raises(ValueError, match=f"net.ipv4.{name}"):
        diagnose([], sysctls(**{name: raw}))


def test_port_parsers():
    assert parse_port_range("32768\t60999\n") == (32768, 60999)
    assert parse_reserved_ports("") == set()
    assert parse_reserved_ports("8080, 9000-9002") == {8080, 9000, 9001, 9002}


# ---------------------------------------------------------------- saved /proc trees


def _hex_address(address, port):
    ip = ipaddress.ip_address(address)
    if ip.version == 4:
        return f"{struct.unpack('<I', ip.packed)[0]:08X}:{port:04X}"
    words = struct.unpack(">4I", ip.packed)
    return "".join(f"{struct.unpack('<I', struct.pack('>I', w))[0]:08X}" for w in words) + f":{port:04X}"


STATE_HEX = {"ESTABLISHED": 0x01, "FIN_WAIT_2": 0x05, "TIME_WAIT": 0x06, "CLOSE_WAIT": 0x08, "LISTEN": 0x0A}


def proc_net_tcp(rows):
    """Text in the kernel's /proc/net/tcp format; rows are (local, remote, state, timer, ticks)."""
    lines = [
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"
    ]
    for i, (local, remote, state, timer, ticks) in enumerate(rows):
        lines.append(
            f"{i:4d}: {_hex_address(*local)} {_hex_address(*remote)} "
            f"{STATE_HEX[state]:02X} 00000000:00000000 {timer:02X}:{ticks:08X} "
            f"00000000     0        0 0 1 0000000000000000"
        )
    return "\n".join(lines) + "\n"


def write_proc(root, tcp=(), tcp6=(), values=None):
    (root / "net").mkdir(parents=True)
    (root / "net" / "tcp").write_text(proc_net_tcp(tcp))
    (root / "net" / "tcp6").write_text(proc_net_tcp(tcp6))
    for name, value in (SYSCTLS if values is None else values).items():
        path = root / "sys" / Path(*name.split("."))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value + "\n")
    return root


def test_saved_tree_with_ipv6_and_a_missing_sysctl(tmp_path):
    values = sysctls(tcp_tw_reuse_delay=None)
    tcp6 = [(("2001:db8::2", 33000 + i), ("2001:db8::1", 443), "TIME_WAIT", 3, 100 * 45) for i in range(40)]
    tcp6.append((("::", 443), ("::", 0), "LISTEN", 0, 0))
    tcp = [(("10.0.0.5", 34000 + i), ("10.0.2.9", 6379), "CLOSE_WAIT", 0, 0) for i in range(12)]
    root = write_proc(tmp_path / "proc", tcp=tcp, tcp6=tcp6, values=values)
    report = examine(str(root), clock_ticks=100)
    assert report.state_totals == {"TIME_WAIT": 40, "CLOSE_WAIT": 12, "LISTEN": 1}
    (b6, b4) = report.budgets
    assert (b6.source, b6.destination, b6.time_wait) == ("2001:db8::2", ("2001:db8::1", 443), 40)
    assert b6.recent_rate == 0 and b6.freed_within_10s == 0  # all 15 s old, 45 s left
    assert b4.other_states == 12
    rows = {s.name: s.value for s in report.sysctls}
    assert rows["net.ipv4.tcp_tw_reuse_delay"] is None
    assert rows["net.ipv4.tcp_tw_reuse"] == "2"


def test_this_host_capture_matches_its_raw_lines():
    root = FIXTURES / "this-host" / "proc"
    raw_states = []
    for name in ("tcp", "tcp6"):
        for line in (root / "net" / name).read_text().splitlines()[1:]:
            raw_states.append(line.split()[3])
    report = examine(str(root), clock_ticks=100)
    assert report.sockets == len(raw_states)
    assert report.state_totals.get("TIME_WAIT", 0) == raw_states.count("06")
    assert report.state_totals.get("CLOSE_WAIT", 0) == raw_states.count("08")
    assert sum(e.time_wait for e in report.endpoints) == raw_states.count("06")
    assert report.counters["TW"] > 0


def test_old_kernel_capture():
    report = examine(str(FIXTURES / "linux-4.9-client" / "proc"), clock_ticks=100)
    topics = [a.topic for a in report.advice]
    assert topics[0] == "tw_recycle" and "port_budget" in topics and "close_wait" in topics
    rows = {s.name: s.value for s in report.sysctls}
    assert rows["net.ipv4.tcp_tw_reuse_delay"] is None and rows["net.ipv4.tcp_tw_recycle"] == "1"


def test_reading_opens_files_read_only(monkeypatch):
    modes = []
    real_open = builtins.open

    def spy(file, mode="r", *args, **kwargs):
        modes.append(mode)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy)
    examine(str(FIXTURES / "this-host" / "proc"))
    examine("/proc")
    assert modes and set(modes) == {"r"}


def test_read_sysctls_leaves_out_absent_files(tmp_path):
    root = write_proc(tmp_path / "proc", values={"net.ipv4.tcp_tw_reuse": "1"})
    assert read_sysctls(str(root)) == {"net.ipv4.tcp_tw_reuse": "1"}


# ---------------------------------------------------------------- command line


def run_cli(capsys, *argv):
    code = cli.main(["doctor", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_json_with_top(capsys, tmp_path):
    tcp = [(("10.0.0.5", 33000 + i), (f"10.0.1.{i % 4}", 443), "TIME_WAIT", 3, 3000) for i in range(40)]
    root = write_proc(tmp_path / "proc", tcp=tcp)
    code, out, _ = run_cli(capsys, "--json", "--top", "2", "--proc-root", str(root))
    assert code == 0
    data = json.loads(out)
    assert data["endpoints_count"] == 4 and len(data["endpoints"]) == 2
    assert data["destinations_count"] == 4 and len(data["budgets"]) == 2
    assert data["state_totals"] == {"TIME_WAIT": 40}
    assert data["budgets"][0]["ceiling_rate"] == pytest.approx(RANGE_PORTS / 60)


def test_cli_text(capsys):
    code, out, _ = run_cli(capsys, "--proc-root", str(FIXTURES / "linux-4.9-client" / "proc"))
    assert code == 0
    assert "Port budget per destination" in out and "[critical]" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--top", "0"], "--top"),
        (["--top", "many"], "--top"),
        (["--proc-root", "/nonexistent/proc"], "--proc-root"),
    ],
)
def test_cli_bad_options_exit_2_naming_the_option(capsys, argv, message):
    try:
        code = cli.main(["doctor", *argv])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    assert code == 2
    assert message in capsys.readouterr().err


def test_cli_bad_sysctl_in_a_capture_exits_2(capsys, tmp_path):
    root = write_proc(tmp_path / "proc", values=sysctls(ip_local_port_range="9 1"))
    code, _, err = run_cli(capsys, "--proc-root", str(root))
    assert code == 2 and "net.ipv4.ip_local_port_range" in err and "65535" in err


def test_installed_command_reports_on_this_host():
    exe = Path(sys.executable).parent / "timewait"
    if not exe.exists():
        exe = shutil.which("timewait")
    if not exe or not Path("/proc/net/tcp").exists():
        pytest.skip("needs the installed `timewait` command and a Linux /proc")
    text = subprocess.run([str(exe), "doctor"], capture_output=True, text=True, check=True)
    assert "TCP sockets:" in text.stdout and "Advice" in text.stdout
    js = subprocess.run([str(exe), "doctor", "--json"], capture_output=True, text=True, check=True)
    assert json.loads(js.stdout)["usable_ports"] > 0


# ---------------------------------------------------------------- measured rates (--interval)

REUSE_CLIENT = FIXTURES / "tw-reuse-client"


def two_snapshots(first, second, seconds):
    """A counter reader, sleep and clock that replay two readings `seconds` apart."""
    readings, times = iter([first, second]), iter([0.0, float(seconds)])
    return dict(read=lambda: next(readings), sleep=lambda s: None, clock=lambda: next(times))


def test_default_report_is_instant_and_says_its_rate_is_estimated(monkeypatch):
    monkeypatch.setattr("time.sleep", lambda s: pytest.fail("the default report must not wait"))
    report = examine(str(REUSE_CLIENT / "proc"))
    assert report.measured is None
    assert report.estimated_close_rate == pytest.approx(600 / 60)
    text = render_text(report)
    assert "estimated: 10 closes/s" in text and "measured: not measured" in text
    assert report.to_json()["rates"]["measured"] is None


def test_tw_reuse_hides_most_closes_from_the_estimate_but_not_from_the_counters():
    replay = two_snapshots(
        read_rate_counters(str(REUSE_CLIENT / "proc")),
        read_rate_counters(str(REUSE_CLIENT / "after-10s")),
        10,
    )
    measured = measure_rates(10, **replay)
    assert measured.interval_s == 10
    assert measured.per_s == {
        "ActiveOpens": 250.0,
        "PassiveOpens": 0.0,
        "TW": 250.0,
        "TWRecycled": 240.0,
        "TWKilled": 0.0,
        "TCPTimeWaitOverflow": 0.0,
    }
    report = examine(str(REUSE_CLIENT / "proc")).with_measured(measured)
    assert report.estimated_close_rate == 10.0  # 25 times too low
    (adv,) = advice(report, "rate")
    assert "measured 250 new connections/s over 10 s" in adv.text and "TWRecycled" in adv.text
    assert report.advice[-1].topic == "ok"  # the rate note comes before the all-clear
    text = render_text(report)
    assert (
        "measured over 10 s: 250 new connections/s, each counted once; 250/s opened by "
        "connect() (ActiveOpens)" in " ".join(text.split())
    )
    js = report.to_json()["rates"]
    assert js["measured"]["per_s"]["TWRecycled"] == 240.0
    assert js["estimated"]["closes_per_s"] == 10.0


def test_closes_past_tcp_max_tw_buckets_show_in_the_measured_rate():
    before = {
        "ActiveOpens": 1000,
        "PassiveOpens": 0,
        "TW": 500,
        "TWRecycled": 0,
        "TWKilled": 0,
        "TCPTimeWaitOverflow": 0,
    }
    after = dict(before, ActiveOpens=1000 + 5 * 400, TW=500 + 5 * 17, TCPTimeWaitOverflow=5 * 383)
    measured = measure_rates(5, **two_snapshots(before, after, 5))
    assert measured.per_s["ActiveOpens"] == 400 and measured.per_s["TCPTimeWaitOverflow"] == 383
    table = time_wait_clients(1000, "10.0.0.5", ("10.0.1.20", 443))
    report = diagnose(table, sysctls(tcp_max_tw_buckets="1000")).with_measured(measured)
    (adv,) = advice(report, "rate")
    assert "closes past tcp_max_tw_buckets (TCPTimeWaitOverflow)" in adv.text


def test_closes_by_reset_leave_no_time_wait_and_no_tw_reuse_counter_to_blame():
    before = {"ActiveOpens": 0, "PassiveOpens": 0, "TW": 0, "TWRecycled": 0}
    after = {"ActiveOpens": 300, "PassiveOpens": 0, "TW": 0, "TWRecycled": 0}
    measured = measure_rates(1, **two_snapshots(before, after, 1))
    assert measured.missing == ("TWKilled", "TCPTimeWaitOverflow")
    (adv,) = advice(diagnose([], SYSCTLS).with_measured(measured), "rate")
    assert "end by reset" in adv.text
    assert "not on this kernel: TWKilled, TCPTimeWaitOverflow" in render_text(
        diagnose([], SYSCTLS).with_measured(measured)
    )


def test_measured_rate_close_to_the_estimate_adds_no_advice():
    table = time_wait_clients(600, "10.0.0.5", ("10.0.1.20", 443))
    before = {"ActiveOpens": 0, "PassiveOpens": 0}
    measured = measure_rates(2, **two_snapshots(before, {"ActiveOpens": 22, "PassiveOpens": 0}, 2))
    assert advice(diagnose(table, SYSCTLS).with_measured(measured), "rate") == []


def test_rates_divide_by_the_time_that_really_passed():
    measured = measure_rates(1, **two_snapshots({"ActiveOpens": 0}, {"ActiveOpens": 150}, 1.5))
    assert measured.per_s["ActiveOpens"] == pytest.approx(100)


def test_interval_on_the_live_host_really_waits_and_reads_twice(monkeypatch):
    if not Path("/proc/net/snmp").exists():
        pytest.skip("needs a Linux /proc")
    slept = []
    monkeypatch.setattr("timewait.doctor.time.sleep", slept.append)
    report = examine("/proc", interval=0.25)
    assert slept == [0.25]
    assert set(report.measured.per_s) >= {"ActiveOpens", "PassiveOpens"}
    assert all(v >= 0 for v in report.measured.per_s.values())


@pytest.mark.parametrize("interval", [0, -1, 60.5, float("nan"), "soon", True, None])
def test_interval_out_of_range_names_the_parameter_and_its_range(interval):
    with pytest.raises(
        ValueError,
        match=r"--interval: must be a number of seconds with "
        r"0 < interval <= 60",
    ):
        measure_rates(interval, read=lambda: {}, sleep=lambda s: None)


@pytest.mark.parametrize("value", ["0", "61", "-2", "x"])
def test_cli_bad_interval_exits_2_naming_the_option_and_range(capsys, value):
    with pytest.raises(SystemExit) as exc:
        cli.main(["doctor", "--interval", value, "--proc-root", str(REUSE_CLIENT / "proc")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--interval" in err and "0 < SECONDS <= 60" in err


def test_cli_json_with_interval_reports_both_rates(capsys, monkeypatch):
    monkeypatch.setattr("timewait.doctor.time.sleep", lambda s: None)
    code, out, _ = run_cli(capsys, "--json", "--interval", "0.5", "--proc-root", str(REUSE_CLIENT / "proc"))
    assert code == 0
    rates = json.loads(out)["rates"]
    assert rates["estimated"]["closes_per_s"] == 10.0
    assert rates["measured"]["per_s"]["ActiveOpens"] == 0  # the same tree read twice


# ---------------------------------------------------------------- unreadable files


def test_unreadable_socket_and_counter_files_are_skipped_and_noted(monkeypatch):
    root = str(FIXTURES / "this-host" / "proc")
    every_socket = len(read_sockets(root))
    real_open = builtins.open
    denied = ("net/tcp", "net/netstat", "net/snmp", "net/sockstat")

    def deny(file, *args, **kwargs):
        if str(file).endswith(denied):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", deny)
    assert read_counters(root) == {} and read_open_counters(root) == {}
    assert read_sockstat(root) == {} and read_rate_counters(root) == {}
    assert len(read_sockets(root)) < every_socket  # tcp6 still read
    report = examine(root)
    assert report.counters == {}
    assert any("net/tcp exists but this user may not read it" in n for n in report.notes)


# ---------------------------------------------------------------- nothing is ever written

_AUDITING = contextvars.ContextVar("doctor_audit", default=None)
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_MUTATING_EVENTS = {
    "os.remove",
    "os.rmdir",
    "os.rename",
    "os.mkdir",
    "os.chmod",
    "os.chown",
    "os.truncate",
    "os.link",
    "os.symlink",
    "os.utime",
    "os.chdir",
    "os.kill",
    "os.killpg",
    "os.putenv",
    "os.unsetenv",
    "shutil.copyfile",
    "shutil.rmtree",
    "shutil.move",
    "subprocess.Popen",
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "os.forkpty",
    "pty.spawn",
    "socket.bind",
    "socket.connect",
    "socket.sendto",
}


def _audit(event, args):
    seen = _AUDITING.get()
    if seen is None:  # only inside forbid_writes(); audit hooks cannot be removed
        return
    if event == "open":
        path, mode, flags = args
        if (mode is not None and any(c in mode for c in "wax+")) or (flags or 0) & _WRITE_FLAGS:
            seen.append((event, path, mode, flags))
            raise PermissionError(f"doctor tried to open {path!r} for writing")
    elif event in _MUTATING_EVENTS:
        seen.append((event, args))
        raise PermissionError(f"doctor tried {event}{args!r}")


sys.addaudithook(_audit)


@contextlib.contextmanager
def forbid_writes():
    """Record, and refuse, every write-mode open, subprocess and mutation inside the block."""
    seen = []
    token = _AUDITING.set(seen)
    try:
        yield seen
    finally:
        _AUDITING.reset(token)


def test_the_write_guard_itself_catches_writes(tmp_path):
    with forbid_writes() as seen:
        with pytest.raises(PermissionError):
            open(tmp_path / "x", "w")
        with pytest.raises(PermissionError):
            os.open(tmp_path / "y", os.O_WRONLY | os.O_CREAT)
        with pytest.raises(PermissionError):
            subprocess.run(["true"])
    assert [s[0] for s in seen] == ["open", "open", "subprocess.Popen"]
    open(tmp_path / "z", "w").close()  # outside the block, nothing is watched


@pytest.mark.parametrize(
    "argv",
    [
        ["--json", "--proc-root", str(FIXTURES / "this-host" / "proc")],
        ["--json", "--interval", "0.1", "--proc-root", str(REUSE_CLIENT / "proc")],
        ["--json"],
        ["--json", "--interval", "0.1"],
        [],
    ],
    ids=["fixture", "fixture-interval", "live", "live-interval", "live-text"],
)
def test_the_whole_doctor_writes_nothing_and_runs_nothing(capsys, monkeypatch, argv):
    if "--proc-root" not in argv and not Path("/proc/net/tcp").exists():
        pytest.skip("needs a Linux /proc")
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    with forbid_writes() as seen:
        code = cli.main(["doctor", *argv])
    out = capsys.readouterr().out
    assert seen == [] and code == 0
    if "--json" in argv:
        assert json.loads(out)["usable_ports"] > 0
