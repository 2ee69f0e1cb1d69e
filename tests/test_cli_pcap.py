"""`--pcap FILE`: a file that cannot be written is refused before the experiment runs; a
write that fails after the run (a full disk) keeps the printed result; a .pcapng file marks
the segments the experiment dropped, held or delivered late."""

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from timewait.capture import SEGMENT_COMMENTS, segment_comment
from timewait.cli_options import OUTPUT_FILE, output_file

SRC = str(Path(__file__).resolve().parent.parent / "src")


def timewait(*argv):
    env = dict(os.environ, PYTHONPATH=SRC)
    env.pop("TIMEWAIT_TIER", None)
    return subprocess.run(
        [sys.executable, "-m", "timewait.cli", *argv], env=env, capture_output=True, text=True, timeout=60
    )


def test_a_directory_the_user_cannot_write_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    target = str(locked / "x.pcap")
    pid = os.fork()
    if pid == 0:  # the check as an unprivileged user (root may write anywhere)
        status = 3
        try:
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
            try:
                output_file(target)
                status = 1
            except argparse.ArgumentTypeError as exc:
                status = (
                    0 if (f"must be {OUTPUT_FILE}" in str(exc) and "Permission denied" in str(exc)) else 2
                )
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert list(locked.iterdir()) == []


def test_the_check_leaves_no_file_behind(tmp_path):
    target = tmp_path / "new.pcap"
    assert output_file(str(target)) == str(target)
    assert not target.exists()
    existing = tmp_path / "old.pcap"
    existing.write_bytes(b"kept")
    output_file(str(existing))
    assert existing.read_bytes() == b"kept"


def test_an_unwritable_pcap_is_refused_before_the_run(full_tier):
    proc = timewait("experiment", "four-way-close", "--pcap", "/proc/timewait-test.pcap")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        f"timewait experiment four-way-close: --pcap: must be {OUTPUT_FILE}, got "
        "'/proc/timewait-test.pcap' (no such directory)"
    ]


@pytest.mark.parametrize("as_json", [False, True])
def test_a_failed_write_keeps_the_printed_result(full_tier, as_json):
    # /dev/full can be opened, and every write to it fails with ENOSPC, as on a full disk.
    proc = timewait("experiment", "four-way-close", "--pcap", "/dev/full", *(["--json"] if as_json else []))
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "timewait experiment four-way-close: --pcap: could not write '/dev/full' (No space left on device)"
    ]
    if as_json:
        assert json.loads(proc.stdout)["end_states"]["client"] == "TIME_WAIT"
    else:
        assert "four-way-close (closer=client" in proc.stdout
        assert 'end_states: {"client": "TIME_WAIT", "server": "CLOSED"}' in proc.stdout


@pytest.mark.parametrize(
    "experiment, options",
    [("lost-final-ack", ["--fin-losses", "1"]), ("old-duplicate", [])],
    ids=["dropped", "held-and-late"],
)
def test_a_pcapng_marks_what_the_experiment_did_to_a_segment(full_tier, tmp_path, experiment, options):
    """A live capture written as pcapng carries the same packet comments as the site's
    captures: exactly the segments the experiment's trace notes, each with its note's text."""
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.fail("tshark is not installed (scripts/system-deps.sh installs it)")
    path = tmp_path / "run.pcapng"
    proc = timewait("experiment", experiment, *options, "--json", "--pcap", str(path))
    assert proc.returncode == 0, proc.stderr
    trace = json.loads(proc.stdout)["trace"]
    noted = sorted(segment_comment(s["note"]) for s in trace if s.get("note") in SEGMENT_COMMENTS)
    assert noted, "the run's trace notes no dropped, held or late segment"
    rows = subprocess.run(
        [tshark, "-r", str(path), "-T", "fields", "-e", "frame.comment", "-e", "_ws.malformed"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    comments = sorted(c for c, *_ in (r.split("\t") for r in rows) if c)
    assert comments == noted
    assert not any(r.split("\t")[1] for r in rows if "\t" in r)


def test_a_pcap_file_has_no_room_for_comments(full_tier, tmp_path):
    path = tmp_path / "run.pcap"
    proc = timewait("experiment", "lost-final-ack", "--pcap", str(path))
    assert proc.returncode == 0, proc.stderr
    assert path.read_bytes()[:4] == bytes.fromhex("d4c3b2a1")  # classic pcap, little-endian
