"""The lab grader fails clearly: a hanging or crashing submission, or a wrong answer, is
reported within the timeout and below full marks. (``make test-labs`` checks every lab's
reference solution and student version; these tests check the grader's failure paths on
the one lab that needs no network namespace.)"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

LABS = Path(__file__).resolve().parent.parent / "labs"
sys.path.insert(0, str(LABS))

pytest.importorskip("otter")
import check_labs  # noqa: E402
from grade import grade  # noqa: E402

MODEL_LAB = LABS / "04-time-wait-model" / "time_wait_model.ipynb"


@pytest.fixture(scope="module")
def model_lab(tmp_path_factory):
    out = tmp_path_factory.mktemp("model-lab")
    error = check_labs.assign(MODEL_LAB, out, timeout=120)
    assert not error, error
    return {
        "out": out,
        "zip": next((out / "autograder").glob("*-autograder_*.zip")),
        "solution": out / "autograder" / MODEL_LAB.name,
    }


def variant(src: Path, dest: Path, change) -> Path:
    nb = nbformat.read(src, as_version=4)
    change(nb.cells)
    nbformat.write(nb, dest)
    return dest


def test_every_lab_is_found():
    names = [name for name, _ in check_labs.find_labs()]
    assert names == ["socket-table", "lost-final-ack", "port-budget", "time-wait-model", "restartable-server"]


def test_a_hanging_submission_fails_within_the_timeout(model_lab, tmp_path):
    hang = variant(
        model_lab["solution"],
        tmp_path / MODEL_LAB.name,
        lambda cells: cells.insert(1, nbformat.v4.new_code_cell("import time\ntime.sleep(3600)")),
    )
    start = time.monotonic()
    g = grade(hang, model_lab["zip"], timeout=15, output_dir=tmp_path / "results")
    assert time.monotonic() - start < 30
    assert not g.full_marks
    assert "did not finish within 15 s" in g.error


def test_a_crashing_submission_is_not_graded_full(model_lab, tmp_path):
    crash = variant(
        model_lab["solution"],
        tmp_path / MODEL_LAB.name,
        lambda cells: cells.insert(1, nbformat.v4.new_code_cell("import os\nos._exit(3)")),
    )
    g = grade(crash, model_lab["zip"], timeout=60, output_dir=tmp_path / "results")
    assert not g.full_marks
    assert g.error or g.score == 0


def test_a_time_wait_that_does_not_restart_its_timer_loses_points(model_lab, tmp_path):
    def break_restart(cells):
        for cell in cells:
            if "CLOSE_ROWS[(TIME_WAIT, RCV_FIN)]" in cell.source:
                cell.source = cell.source.replace(
                    "CLOSE_ROWS[(TIME_WAIT, RCV_FIN)] = (TIME_WAIT, (SEND_ACK, START_TIME_WAIT))",
                    "CLOSE_ROWS[(TIME_WAIT, RCV_FIN)] = (TIME_WAIT, (SEND_ACK,))",
                )
                return
        raise AssertionError("the solution's TIME_WAIT row was not found")

    wrong = variant(model_lab["solution"], tmp_path / MODEL_LAB.name, break_restart)
    g = grade(wrong, model_lab["zip"], timeout=120, output_dir=tmp_path / "results")
    assert not g.error, g.error
    assert g.questions["q1"][0] == g.questions["q1"][1]
    assert g.questions["q2"][0] < g.questions["q2"][1]


def test_time_limit_stops_a_hanging_check():
    sys.path.insert(0, str(LABS / "01-socket-table"))
    from socket_table_lab import time_limit

    start = time.monotonic()
    with pytest.raises(TimeoutError, match="spin did not finish within 0.2 s"):
        with time_limit(0.2, "spin"):
            while True:
                pass
    assert time.monotonic() - start < 2


def test_grade_exit_status_says_full_marks(model_lab, tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(LABS / "grade.py"),
            str(model_lab["solution"]),
            str(model_lab["zip"]),
            "--timeout",
            "120",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().endswith(f"{MODEL_LAB.name}: 12/12"), proc.stdout


def test_grade_json_names_the_submission(model_lab, tmp_path):
    import json

    proc = subprocess.run(
        [
            sys.executable,
            str(LABS / "grade.py"),
            str(model_lab["solution"]),
            str(model_lab["zip"]),
            "--timeout",
            "120",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["submission"] == str(model_lab["solution"])
    assert report["score"] == report["max_score"] == 12
    assert report["not_run"] == {}
