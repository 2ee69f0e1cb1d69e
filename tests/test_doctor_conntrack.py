"""`timewait doctor` reads connection tracking when it can: the table's count against its
max, TCP entries by conntrack's state, TIME_WAIT entries per destination, and NAT's ports
towards one destination held by them. Fake /proc trees test the reading and the advice; one
live test runs the doctor on the router of a topology with NAT."""

import builtins
import json
from collections import Counter

import pytest

from tests.test_doctor import advice, forbid_writes, write_proc
from timewait import cli, conntrack, sandbox, tiers
from timewait.doctor import examine, read_conntrack


def ct_line(state, original, reply, timeout=100, family=4, assured=True):
    """One TCP line of /proc/net/nf_conntrack; ``original`` and ``reply`` are
    (src, sport, dst, dport)."""
    osrc, osp, odst, odp = original
    rsrc, rsp, rdst, rdp = reply
    fam = "ipv6     10" if family == 6 else "ipv4     2"
    flags = " [ASSURED]" if assured else ""
    return (
        f"{fam} tcp      6 {timeout} {state} src={osrc} dst={odst} sport={osp} dport={odp} "
        f"src={rsrc} dst={rdst} sport={rsp} dport={rdp}{flags} mark=0 zone=0 use=2"
    )


def nat_entry(state, client, cport, nat, nport, server, sport=80):
    """A connection from client:cport to server:sport whose source NAT rewrote to nat:nport."""
    return ct_line(state, (client, cport, server, sport), (server, sport, nat, nport))


def plain_entry(state, client, cport, server, sport):
    return ct_line(state, (client, cport, server, sport), (server, sport, client, cport))


UDP = (
    "ipv4     2 udp      17 25 src=10.0.1.2 dst=10.0.0.53 sport=5353 dport=53 "
    "src=10.0.0.53 dst=10.0.1.2 sport=53 dport=5353 mark=0 zone=0 use=2"
)


def with_conntrack(root, lines, count=None, max_entries=262144, time_wait=120):
    (root / "net" / "nf_conntrack").write_text("\n".join(lines) + "\n")
    netfilter = root / "sys" / "net" / "netfilter"
    netfilter.mkdir(parents=True, exist_ok=True)
    for name, value in (
        ("nf_conntrack_count", len(lines) if count is None else count),
        ("nf_conntrack_max", max_entries),
        ("nf_conntrack_tcp_timeout_time_wait", time_wait),
    ):
        if value is not None:
            (netfilter / name).write_text(f"{value}\n")
    return root


def gateway(tmp_path, per_client=50, clients=3, **kwargs):
    """A NAT gateway: ``clients`` hosts' closed connections to 10.0.100.2:80, all
    translated to 10.0.100.1, plus five connections it forwards untranslated and a UDP flow."""
    lines, port = [], 40000
    for c in range(clients):
        for _ in range(per_client):
            lines.append(nat_entry("TIME_WAIT", f"10.0.{c + 1}.2", port, "10.0.100.1", port, "10.0.100.2"))
            port += 1
    lines += [plain_entry("ESTABLISHED", "10.0.1.2", 50000 + i, "10.0.200.5", 443) for i in range(5)]
    lines.append(UDP)
    return with_conntrack(write_proc(tmp_path / "proc"), lines, **kwargs)


# ---------------------------------------------------------------- the section


def test_the_section_counts_entries_states_and_time_wait_per_destination(tmp_path):
    report = examine(str(gateway(tmp_path)))
    c = report.conntrack
    assert c.entries == 156 and c.max_entries == 262144  # nf_conntrack_count: the UDP flow too
    assert c.tcp_states == {"TIME_WAIT": 150, "ESTABLISHED": 5}
    assert c.time_wait_by_destination == ((("10.0.100.2", 80), 150),)
    assert c.time_wait_timeout_s == 120 and c.translated == 150
    (nat,) = c.nat_time_wait
    assert (nat.translated, nat.destination) == ("10.0.100.1", ("10.0.100.2", 80))
    assert (nat.time_wait, nat.ports, nat.clients) == (150, 150, 3)
    assert report.conntrack_unavailable == ""


def test_many_time_wait_entries_behind_one_translated_source_explain_the_nat_budget(tmp_path):
    report = examine(str(gateway(tmp_path)))
    (nat,) = advice(report, "nat_ports")
    assert nat.level == "info"
    assert nat.text.startswith(
        "150 conntrack TIME_WAIT entries towards 10.0.100.2:80 share the translated source "
        "10.0.100.1 (from 3 client addresses behind this NAT)"
    )
    assert "for the 120 s of conntrack's TIME_WAIT" in nat.text
    assert "64,512 ports (1024-65535)" in nat.text and "about 538 new connections/s" in nat.text
    assert "1.2/s now" in nat.text  # 150 / 120 s
    assert "connect() times out, not EADDRNOTAVAIL" in nat.text
    for fix in ("keep-alive", "a wider port range", "a lower nf_conntrack_tcp_timeout_time_wait"):
        assert fix in nat.text
    assert not advice(report, "conntrack_table")  # 156 of 262,144


def test_the_timeout_in_the_advice_is_the_namespace_s_own(tmp_path):
    report = examine(str(gateway(tmp_path, time_wait=30)))
    (nat,) = advice(report, "nat_ports")
    assert "for the 30 s of conntrack's TIME_WAIT" in nat.text and "5.0/s now" in nat.text


def test_half_the_default_nat_range_in_time_wait_is_a_warning(tmp_path):
    report = examine(str(gateway(tmp_path, per_client=32256, clients=1)))
    (nat,) = advice(report, "nat_ports")
    assert nat.level == "warning" and not advice(report, "ok")


def test_few_translated_or_untranslated_time_wait_entries_give_no_nat_advice(tmp_path):
    few = examine(str(gateway(tmp_path / "few", per_client=33)))  # 99 behind one address
    assert few.conntrack.nat_time_wait[0].time_wait == 99 and not advice(few, "nat_ports")
    lines = [plain_entry("TIME_WAIT", "10.0.1.2", 40000 + i, "10.0.100.2", 80) for i in range(500)]
    firewall = examine(str(with_conntrack(write_proc(tmp_path / "fw" / "proc"), lines)))
    assert firewall.conntrack.time_wait_by_destination == ((("10.0.100.2", 80), 500),)
    assert firewall.conntrack.translated == 0 and not advice(firewall, "nat_ports")


@pytest.mark.parametrize("count, level", [(209716, "warning"), (249037, "critical")])
def test_a_table_near_its_max_warns_what_happens_when_it_is_full(tmp_path, count, level):
    report = examine(str(gateway(tmp_path, count=count)))  # 80 % and 95 % of 262,144
    (table,) = advice(report, "conntrack_table")
    assert table.level == level and report.advice[0] is table
    assert f"conntrack holds {count:,} entries against nf_conntrack_max = 262,144" in table.text
    assert "`nf_conntrack: table full, dropping packet`" in table.text
    assert "nf_conntrack_core.c" in table.text and "150 entries are in TIME_WAIT" in table.text
    assert not advice(report, "ok")


def test_just_under_the_warning_line_is_quiet(tmp_path):
    report = examine(str(gateway(tmp_path, count=209715)))
    assert not advice(report, "conntrack_table") and report.conntrack.used < 0.8


def test_ipv6_entries_are_counted_per_destination(tmp_path):
    lines = [
        ct_line(
            "TIME_WAIT",
            ("fd00:1::2", 40000 + i, "fd00:100::2", 443),
            ("fd00:100::2", 443, "fd00:1::2", 40000 + i),
            family=6,
        )
        for i in range(3)
    ]
    report = examine(str(with_conntrack(write_proc(tmp_path / "proc"), lines)))
    assert report.conntrack.time_wait_by_destination == ((("fd00:100::2", 443), 3),)
    assert "[fd00:100::2]:443" in report.text()


def test_without_the_sysctls_the_tcp_lines_are_counted_and_no_max_is_claimed(tmp_path):
    root = gateway(tmp_path, count=None, max_entries=None, time_wait=None)
    (root / "sys" / "net" / "netfilter" / "nf_conntrack_count").unlink()
    report = examine(str(root))
    assert report.conntrack.entries == 155 and report.conntrack.max_entries is None
    assert report.conntrack.used is None and report.conntrack.time_wait_timeout_s is None
    assert "Connection tracking (conntrack): 155 entries\n" in report.text()
    (nat,) = advice(report, "nat_ports")
    assert "for the 120 s of conntrack's TIME_WAIT" in nat.text  # the default, named as such


# ---------------------------------------------------------------- text and JSON


def test_text_shows_the_section_before_the_sysctls(tmp_path):
    text = examine(str(gateway(tmp_path))).text()
    section = text[text.index("Connection tracking") : text.index("Sysctls")]
    assert "156 entries of nf_conntrack_max 262,144 (0.1%)" in section
    assert "TCP: TIME_WAIT 150  ESTABLISHED 5" in section
    assert "nf_conntrack_tcp_timeout_time_wait = 120 s" in section
    assert "10.0.100.2:80" in section and "10.0.100.1 -> 10.0.100.2:80" in section


def test_json_carries_the_same_section(capsys, tmp_path):
    code = cli.main(["doctor", "--json", "--proc-root", str(gateway(tmp_path))])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["conntrack_unavailable"] is None
    c = data["conntrack"]
    assert c["entries"] == 156 and c["max_entries"] == 262144
    assert c["tcp_states"] == {"TIME_WAIT": 150, "ESTABLISHED": 5}
    assert c["time_wait_by_destination"] == [{"destination": "10.0.100.2:80", "time_wait": 150}]
    assert c["nat_time_wait"] == [
        {
            "translated": "10.0.100.1",
            "destination": "10.0.100.2:80",
            "time_wait": 150,
            "ports": 150,
            "clients": 3,
        }
    ]
    assert [a["topic"] for a in data["advice"]].count("nat_ports") == 1


# ---------------------------------------------------------------- when it cannot be read


def test_no_conntrack_is_one_line_and_no_error(capsys, tmp_path):
    root = write_proc(tmp_path / "proc")
    report = examine(str(root))
    assert report.conntrack is None and "not loaded" in report.conntrack_unavailable
    lines = [line for line in report.text().splitlines() if "onntrack" in line]
    assert lines == [f"Connection tracking: not read: {report.conntrack_unavailable}"]
    code = cli.main(["doctor", "--json", "--proc-root", str(root)])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["conntrack"] is None and "not loaded" in data["conntrack_unavailable"]


def test_a_table_this_user_may_not_read_says_so(monkeypatch, tmp_path):
    root = gateway(tmp_path)
    real_open = builtins.open

    def deny(file, *args, **kwargs):
        if str(file).endswith("net/nf_conntrack"):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", deny)
    report = examine(str(root))
    assert report.conntrack is None
    assert report.conntrack_unavailable.startswith("net/nf_conntrack exists but this user may not read it")
    assert "root" in report.conntrack_unavailable and not advice(report, "nat_ports")


def test_a_bad_count_names_the_sysctl(capsys, tmp_path):
    root = gateway(tmp_path)
    (root / "sys" / "net" / "netfilter" / "nf_conntrack_count").write_text("lots\n")
    with pytest.raises(ValueError, match="net.netfilter.nf_conntrack_count: expected a whole number"):
        read_conntrack(str(root))
    assert cli.main(["doctor", "--proc-root", str(root)]) == 2
    assert "nf_conntrack_count" in capsys.readouterr().err


def test_reading_conntrack_writes_nothing_and_runs_nothing(capsys, tmp_path):
    root = gateway(tmp_path, count=249037)
    with forbid_writes() as seen:
        code = cli.main(["doctor", "--proc-root", str(root)])
    assert seen == [] and code == 0 and "table full" in capsys.readouterr().out


# ---------------------------------------------------------------- live, on a NAT router


@pytest.fixture(scope="module")
def on_the_router(full_tier):
    ok, why = tiers.topology_support()
    if not ok:
        pytest.skip(why)
    return sandbox.run_body("tests.doctor_bodies:nat_then_doctor", {"closed": 5, "kept_open": 2}, timeout=90)


@pytest.mark.live
def test_doctor_on_a_nat_router_counts_what_conntrack_holds(on_the_router):
    out = on_the_router
    c = out["report"]["conntrack"]
    table = [
        conntrack.Entry(**{k: tuple(v) if isinstance(v, list) else v for k, v in e.items()})
        for e in out["entries"]
    ]
    # conntrack's own view, read beside the doctor in the router's namespace
    assert c["entries"] == out["count"] and c["max_entries"] == out["max"]
    assert c["time_wait_timeout_s"] == out["time_wait_timeout"] == 120
    assert c["tcp_states"] == dict(Counter(e.state for e in table))
    # and what the run made: five closed through the NAT, two still open
    assert c["tcp_states"] == {"TIME_WAIT": 5, "ESTABLISHED": 2}
    server = f"{out['server']}:80"
    assert c["time_wait_by_destination"] == [{"destination": server, "time_wait": 5}]
    assert c["translated"] == 7
    (nat,) = c["nat_time_wait"]
    assert (nat["translated"], nat["destination"]) == (out["router_outside"], server)
    assert (nat["time_wait"], nat["ports"], nat["clients"]) == (5, 7, 1)
    assert out["report"]["conntrack_unavailable"] is None
    assert "Connection tracking (conntrack): 7 entries" in out["text"]
