"""Captures that Wireshark reads right: only experiments that capture offer --pcap, and every
pcap the site serves dissects as plain TCP with no malformed packet."""
import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest

from timewait import cli, experiments

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
