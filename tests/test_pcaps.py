"""Captures that Wireshark reads right: only experiments that capture offer --pcap, and every
pcap the site serves dissects as plain TCP with no malformed packet."""

import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest

from timewait import cli, experiments
from timewait.capture import segment_comment

ROOT = Path(__file__).resolve().parents[1]


def test_only_experiments_that_capture_offer_pcap(capsys):
    capturing = {name for name, exp in experiments.REGISTRY.items() if exp.captures}
    assert {"four-way-close", "lost-final-ack", "time-wait-reopen"} <= capturing
    for name, exp in experiments.REGISTRY.items():
        helptext = cli._experiment_parser(exp).format_help()
        assert ("--pcap" in helptext) == (name in capturing), name
    with pytest.raises(SystemExit) as refused:
        cli.main(["experiment", "port-exhaustion", "--pcap", "x.pcap"])
    assert refused.value.code == 2
    assert "--pcap" in capsys.readouterr().err


def _site_assets():
    spec = importlib.util.spec_from_file_location("site_assets", ROOT / "scripts" / "site_assets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tshark_rows(path, *fields):
    out = subprocess.run(
        ["tshark", "-r", str(path), "-T", "fields", *[a for f in fields for a in ("-e", f)]],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return [line.split("\t") for line in out.splitlines()]


@pytest.mark.skipif(
    shutil.which("tshark") is None, reason="needs tshark (scripts/system-deps.sh installs it)"
)
def test_tshark_reads_every_site_pcap_as_plain_tcp_with_the_marks_and_retransmissions(tmp_path):
    assets = _site_assets()
    written = assets.write_pcaps(tmp_path)
    assert len(written) >= 40
    runs = {assets.pcap_name(e, p): (e, r) for e, p, r, _ in assets.recorded_runs()}
    for path in written:
        experiment, result = runs[path.name]
        rows = _tshark_rows(
            path,
            "_ws.col.Protocol",
            "_ws.malformed",
            "frame.comment",
            "tcp.analysis.retransmission",
            "tcp.len",
            "tcp.window_size_value",
            "tcp.options",
            "tcp.analysis.duplicate_ack",
        )
        trace = result["trace"]
        assert len(rows) == len(trace), path.name
        for row, seg in zip(rows, trace, strict=True):
            protocol, malformed, comment, _retrans, length, window, options, _dup = row
            assert protocol == "TCP" and not malformed, (path.name, protocol)
            assert int(length) == seg["length"]
            if seg.get("window") is not None:  # recorded as captured: window and options
                assert int(window) == seg["window"]
                assert options.replace(":", "") == seg["tcp_options"], path.name
            # Dropped, held and late segments are marked; no other segment is.
            assert comment == (segment_comment(seg["note"]) if seg.get("note") else "")
        if experiment == "lost-final-ack":
            # The experiment counts the peer's FIN retransmissions; tshark flags the same ones.
            retransmitted_fins = sum(
                1
                for (_p, _m, _c, retrans, *_), seg in zip(rows, trace, strict=True)
                if retrans and "FIN" in seg["flags"]
            )
            assert retransmitted_fins == result["fin_retransmissions"], path.name
            # TIME_WAIT answers the one retransmitted FIN that gets through with the ACK that
            # was lost: the same ACK again, a duplicate ACK to tshark. Without TIME_WAIT the
            # answer is a RST, and no ACK repeats.
            dup_acks = sum(1 for row in rows if row[7])
            assert dup_acks == (1 if result["answer_to_retransmitted_fin"] == "ACK" else 0), path.name
        if experiment == "orphan-retries":
            # The orphan's FIN, sent fin_transmissions times: all but the first are
            # retransmissions to tshark too.
            retransmitted_fins = sum(
                1
                for (_p, _m, _c, retrans, *_), seg in zip(rows, trace, strict=True)
                if retrans and "FIN" in seg["flags"]
            )
            assert retransmitted_fins == result["fin_transmissions"] - 1, path.name


def test_analyze_draws_one_connection_as_a_sequence_diagram(tmp_path, capsys):
    assets = _site_assets()
    assets.write_pcaps(tmp_path)
    capture = tmp_path / assets.pcap_name("time-wait-reopen", {"outrun": True, "timestamps": False})
    out = tmp_path / "reopen.svg"
    assert cli.main(["analyze", str(capture), "--diagram", "1", "--out", str(out)]) == 0
    assert f"wrote the sequence diagram of #1 to {out}" in capsys.readouterr().out
    svg = out.read_text()
    assert svg.startswith("<?xml") and "<svg" in svg
