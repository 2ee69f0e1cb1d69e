"""`timewait analyze` reads a capture the way the experiment that made it tells it, and counts
what tshark counts."""

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from timewait import experiments
from timewait.analyze import analyze, analyze_packets
from timewait.pcapread import read_tcp

ROOT = Path(__file__).resolve().parents[1]
needs_tshark = pytest.mark.skipif(
    shutil.which("tshark") is None, reason="needs tshark (scripts/system-deps.sh installs it)"
)


def _site_assets():
    spec = importlib.util.spec_from_file_location("site_assets", ROOT / "scripts" / "site_assets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site_pcaps(tmp_path_factory):
    """The pcaps the site serves, written as the site build writes them, with the recorded
    run each one comes from."""
    assets = _site_assets()
    dest = tmp_path_factory.mktemp("pcaps")
    assets.write_pcaps(dest)
    runs = {}
    for experiment, params, result, _date in assets.recorded_runs():
        path = dest / assets.pcap_name(experiment, params)
        if path.exists():
            runs[path] = (experiment, params, result)
    assert runs, "the recordings gave no pcap"
    return runs


def tshark_counts(path) -> dict:
    """Connections (tcp.stream), FINs, RSTs and retransmissions as tshark counts them
    (retransmissions of every kind, and segments it calls out of order)."""
    out = subprocess.run(
        [
            "tshark",
            "-r",
            str(path),
            "-T",
            "fields",
            "-e",
            "tcp.stream",
            "-e",
            "tcp.flags.fin",
            "-e",
            "tcp.flags.reset",
            "-e",
            "tcp.analysis.retransmission",
            "-e",
            "tcp.analysis.fast_retransmission",
            "-e",
            "tcp.analysis.spurious_retransmission",
            # Behind the highest sequence number seen, within 3 ms of the previous segment:
            # tshark calls it out of order, the analysis (as on loopback, where nothing is
            # reordered) a retransmission. Bulk transfers under load send such runs.
            "-e",
            "tcp.analysis.out_of_order",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    streams, fins, resets, retransmissions = set(), 0, 0, 0
    for line in out.splitlines():
        stream, fin, rst, *retrans = line.split("\t")
        if not stream:  # not a TCP segment (ARP, ICMPv6 on a topology's link)
            continue
        streams.add(stream)
        fins += fin in ("1", "True")
        resets += rst in ("1", "True")
        retransmissions += any(retrans)
    return {"connections": len(streams), "fins": fins, "resets": resets, "retransmissions": retransmissions}


def analyze_counts(report) -> dict:
    return {
        "connections": report.incarnation_count,
        "fins": report.totals["fins"],
        "resets": report.totals["resets"],
        "retransmissions": report.totals["retransmissions"],
    }


def check_against_experiment(experiment: str, params: dict, result: dict, report) -> None:
    """The close kind, active closer and anomalies agree with the experiment's own account."""
    first = report.incarnations[0]
    if experiment == "four-way-close":
        assert first.active_closer == params["closer"]
        assert first.time_wait_holder == result["time_wait_side"]
        assert first.close_kind == ("merged" if result["close_segments"] == 3 else "four-segment")
        assert not first.rst_to_time_wait
    elif experiment == "lost-final-ack":
        assert first.active_closer == "client"
        assert first.fin_retransmissions == result["fin_retransmissions"]
        assert first.lost_final_ack == (result["fin_retransmissions"] > 0)
        assert first.rst_answering_fin == (result["answer_to_retransmitted_fin"] == "RST")
        if result["answer_to_retransmitted_fin"] == "RST":
            assert first.time_wait_holder is None
        elif params["time_wait"]:
            assert first.time_wait_holder == "client"
        if params["new_connection"] == "same-port":
            second = report.incarnations[1]
            assert second.reuse is not None and second.reuse.previous == first.index
            # The server still holds the old connection in LAST_ACK: it answers the new SYN
            # with an ACK of the old one.
            assert second.old_ack_then_rst == "LAST_ACK"
    elif experiment == "abortive-close":
        assert first.close_kind == "reset"
        assert first.time_wait_holder is None and not result["time_wait_created"]
    elif experiment == "fin-wait-2":
        assert first.active_closer == "client"
        assert first.rst_answering_fin == (result["answer_to_late_fin"] == "RST")
    elif experiment == "time-wait-reopen":
        first, second = report.incarnations[:2]
        assert first.active_closer == "server" and first.time_wait_holder == "server"
        assert second.reuse is not None and second.reuse.previous == first.index
        answered_by_old_ack = result["first_syn_answer"].startswith("ACK")
        assert (second.old_ack_then_rst == "TIME_WAIT") == answered_by_old_ack
        assert second.reuse.timestamp_relation == ("newer" if params["timestamps"] else "none")
        # outrun: the old connection sent past where the ISN clock has moved since.
        assert (second.reuse.isn_relation == "below") == params["outrun"]
    elif experiment == "old-duplicate":
        assert first.active_closer == "client"
        # While the client's TIME_WAIT holds the 4-tuple, A's late segment finds no connection
        # at the server, whose RST goes to that TIME_WAIT.
        assert first.rst_to_time_wait == (params["time_wait"] and result["reply"] == "RST")
        if len(report.incarnations) > 1:  # the reconnect got through
            second = report.incarnations[1]
            assert second.reuse is not None
            if params["timestamps"]:
                assert second.reuse.old_duplicate == "rejected by PAWS"
            elif not params["time_wait"]:
                assert (second.reuse.isn_relation == "below") == params["overlap"]
                assert second.reuse.old_duplicate == (
                    "possible" if params["overlap"] else "rejected by sequence"
                )
    elif experiment == "conntrack-time-wait":
        assert first.active_closer == params["closer"]
        assert first.close_kind in ("four-segment", "merged")
    elif experiment == "orphan-retries":
        fins_from_server = result["fin_transmissions"]
        assert first.fin_retransmissions == fins_from_server - 1
    elif experiment == "held-last-ack":
        # the held socket's FIN, sent fin_transmissions times until tcp_retries2 ran out
        assert first.fin_retransmissions == result["fin_transmissions"] - 1
    elif experiment == "nat-time-wait":
        # At the server, client A's connection and client B's share the translated 4-tuple.
        first, second = report.incarnations[:2]
        assert first.active_closer == "server"
        assert second.reuse is not None and second.reuse.previous == first.index
        assert second.reuse.timestamp_relation == result["b_syn_timestamp"]
        assert second.reuse.isn_relation == ("above" if result["b_syn_sequence"] == "ahead" else "below")
        assert (second.old_ack_then_rst == "TIME_WAIT") == (result["outcome"] == "refused")
    elif experiment == "time-wait-assassination":
        assert first.active_closer == "client" and first.time_wait_holder == "client"
        assert first.close_kind in ("four-segment", "merged")
        # A RST reaches the client's TIME_WAIT: the experiment's own, or the server's answer
        # to the ACK that TIME_WAIT sent for a retransmitted FIN. Whether it ended TIME_WAIT
        # (tcp_rfc1337) is the receiver's setting, which no capture shows.
        assert first.rst_to_time_wait == (params["trigger"] == "rst" or result["peer_reply"] == "RST")
        if params["trigger"] == "retransmitted-fin":
            assert first.fin_retransmissions == 1
    elif experiment == "timeout-close":
        assert first.active_closer == "client"
        if params["kind"] == "recv-timeout":
            assert first.time_wait_holder == ("client" if result["time_wait"] else None)
    else:
        raise AssertionError(f"no account of {experiment} to compare the analysis with")


def _site_pcap_names() -> list:
    assets = _site_assets()
    return sorted(assets.pcap_name(e, p) for e, p, r, _date in assets.recorded_runs() if assets.has_pcap(r))


@needs_tshark
@pytest.mark.parametrize("name", _site_pcap_names())
def test_every_site_pcap_agrees_with_tshark_and_with_its_experiment(site_pcaps, name):
    # one test per capture, so the test workers share the tshark runs
    (path,) = [p for p in site_pcaps if p.name == name]
    experiment, params, result = site_pcaps[path]
    report = analyze(str(path))
    assert analyze_counts(report) == tshark_counts(path), path.name
    check_against_experiment(experiment, params, result, report)


def test_report_as_json_and_text(site_pcaps, capsys):
    from timewait.cli import main

    path = next(
        p
        for p in site_pcaps
        if p.name.startswith("lost-final-ack__fin_losses-0__new_connection-none__time_wait-False")
    )
    assert main(["analyze", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    inc = data["incarnations"][0]
    assert inc["close_kind"] == "merged" and inc["rst_answering_fin"] and inc["lost_final_ack"]
    assert data["servers"][0]["server"] == "127.0.0.1:5000"
    assert main(["analyze", str(path)]) == 0
    text = capsys.readouterr().out
    assert "RST answering a FIN" in text and "final ACK lost" in text


def test_bad_input_names_the_parameter(tmp_path, capsys):
    from timewait.cli import main

    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"not a capture at all")
    assert main(["analyze", str(junk)]) == 2
    assert "neither a pcap nor a pcapng" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:  # refused while the command line is parsed
        main(["analyze", str(junk), "--top", "0"])
    assert refused.value.code == 2
    assert "--top: must be between 1 and 100000, got '0'" in capsys.readouterr().err


@needs_tshark
def test_pcapng_ipv6_and_cooked_captures_read_the_same(site_pcaps, tmp_path):
    """The same capture as pcapng (editcap) and as Linux cooked v2 frames over IPv6 gives
    the same report."""
    path = next(p for p in site_pcaps if p.name.startswith("time-wait-reopen__outrun-False__timestamps-True"))
    ng = tmp_path / "same.pcapng"
    subprocess.run(["editcap", "-F", "pcapng", str(path), str(ng)], check=True, timeout=60)
    assert list(read_tcp(str(ng))) == list(read_tcp(str(path)))

    from scapy.layers.inet import TCP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import CookedLinuxV2
    from scapy.utils import PcapReader, wrpcap

    v6 = tmp_path / "v6.pcap"
    frames = []
    for pkt in PcapReader(str(path)):
        f = (
            CookedLinuxV2(proto=0x86DD)
            / IPv6(
                src="2001:db8::1" if pkt[TCP].sport != 5000 else "2001:db8::2",
                dst="2001:db8::2" if pkt[TCP].sport != 5000 else "2001:db8::1",
            )
            / pkt[TCP]
        )
        f.time = pkt.time
        frames.append(f)
    wrpcap(str(v6), frames)
    a, b = analyze(str(path)), analyze(str(v6))
    assert [(i.close_kind, i.active_closer, i.old_ack_then_rst) for i in a.incarnations] == [
        (i.close_kind, i.active_closer, i.old_ack_then_rst) for i in b.incarnations
    ]
    assert b.servers[0].server == "[2001:db8::2]:5000"
    assert analyze_counts(b) == tshark_counts(v6)


CAPTURING = sorted(name for name, exp in experiments.REGISTRY.items() if exp.captures)
LIVE = [
    ("four-way-close", {"closer": "server"}),
    ("four-way-close", {"merged_fin_ack": True}),
    ("conntrack-time-wait", {"closer": "client"}),
    ("conntrack-time-wait", {"closer": "server"}),
    ("lost-final-ack", {"time_wait": False}),
    ("lost-final-ack", {"new_connection": "same-port"}),
    ("abortive-close", {}),
    ("fin-wait-2", {"fin_timeout": 1}),
    ("time-wait-reopen", {"outrun": False, "timestamps": False}),
    ("old-duplicate", {"timestamps": True}),
    ("orphan-retries", {}),
    ("held-last-ack", {"retries2": 1}),
    ("time-wait-assassination", {}),
    ("timeout-close", {}),
    ("nat-time-wait", {"timestamps": 2, "a_ahead_s": 3600}),
    ("nat-time-wait", {"timestamps": 0, "b_isn": "ahead"}),
]


@pytest.mark.parametrize("name,params", LIVE, ids=[f"{n}-{p}" for n, p in LIVE])
def test_live_capture_of_an_experiment(name, params, tmp_path, full_tier):
    result = experiments.run(name, capture_frames=True, **params)
    path = tmp_path / "live.pcap"
    result.write_pcap(str(path))
    report = analyze(str(path))
    assert report.incarnation_count >= 1
    data = result.to_json()
    check_against_experiment(name, result.params, data, report)
    if shutil.which("tshark"):
        assert analyze_counts(report) == tshark_counts(path)


def test_the_live_list_covers_every_capturing_experiment():
    assert sorted({n for n, _ in LIVE}) == sorted(CAPTURING)


def test_streaming_keeps_no_packets():
    """analyze_packets consumes a generator: nothing forces the whole capture into memory."""
    from timewait.pcapread import ACK, FIN, SYN, Packet

    def packets():
        for i in range(3):
            c, s = ("10.0.0.1", 40000 + i), ("10.0.0.2", 443)
            seq = [
                (c, s, SYN, 100, 0),
                (s, c, SYN | ACK, 900, 101),
                (c, s, ACK, 101, 901),
                (s, c, FIN | ACK, 901, 101),
                (c, s, ACK, 101, 902),
                (c, s, FIN | ACK, 101, 902),
                (s, c, ACK, 902, 102),
            ]
            for k, (a, b, flags, sq, ack) in enumerate(seq):
                yield Packet(i + k / 10, a[0], a[1], b[0], b[1], sq, ack, flags, 0, 65535, None, None)

    report = analyze_packets(packets())
    assert report.incarnation_count == 3
    assert [i.close_kind for i in report.incarnations] == ["four-segment"] * 3
    assert report.servers[0].closed_first_by == {"server": 3}
