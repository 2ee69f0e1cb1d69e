"""What every lab's support module relies on: a check that needs a namespace says it cannot
run on a machine without one (and the grader reports it as not run, not failed), and a crash
in the student's code is shown as the student's own frames."""

from __future__ import annotations

import base64
import sys
import zipfile
from pathlib import Path

import pytest

from timewait import labkit, tiers

LABS = Path(__file__).resolve().parent.parent / "labs"
sys.path.insert(0, str(LABS))
import grade  # noqa: E402


@pytest.fixture
def host_tier(monkeypatch):
    monkeypatch.setenv(tiers.ENV_VAR, "host")


def test_a_namespace_check_cannot_run_on_the_host_tier(host_tier):
    with pytest.raises(
        labkit.CannotRunHere, match="cannot run here: your client needs a private network namespace"
    ):
        labkit.run_student(__file__, "harness", print, "your client")


def test_the_tier_notice_says_what_cannot_run(host_tier):
    assert "cannot run the checks that need a private network namespace" in labkit.lab_tier()
    assert "neither passed nor failed" in labkit.lab_tier()


def test_the_tier_notice_on_a_full_machine():
    if not tiers.detect_tier().at_least("full"):
        pytest.skip("this machine has no private namespaces")
    assert labkit.lab_tier().startswith("This machine runs every check of this lab live")


def student_function(values):
    total = 0
    for v in values:
        total += 10 / v  # a ZeroDivisionError for 0
    return total


class FakeLab:
    current_step = "running the client"


def test_a_crash_shows_the_students_frame_and_the_step():
    value, crash = labkit.call_student(FakeLab(), student_function, [1, 0])
    assert value is None
    assert crash["function"] == "student_function"
    assert crash["type"] == "ZeroDivisionError"
    assert crash["step"] == "running the client"
    assert "of student_function() -> total += 10 / v" in crash["where"]
    assert "labkit" not in crash["where"]


def test_a_crash_inside_the_standard_library_names_where_it_was_raised():
    import json

    def client(text):
        return json.loads(text)

    _, crash = labkit.call_student(FakeLab(), client, "{")
    assert crash["type"] == "JSONDecodeError"
    assert "of client()" in crash["where"]
    assert "(raised inside raw_decode() of decoder.py)" in crash["where"]


def test_an_answer_that_returns_is_passed_through():
    assert labkit.call_student(FakeLab(), student_function, [1, 2]) == (15.0, None)


# ---- the grader's report: not run is neither passed nor failed

NOT_RUN_OUTPUT = """q2 results:
    q2 - 1 result:
        ❌ Test case failed
        Error at line 11 in test q2:
              run = run_client(churning_client, 15)
        CannotRunHere: cannot run here: your churning_client needs a private network namespace, which this machine does not give (no namespaces).
"""  # noqa: E501 (the grader's line as it prints it)
FAILED_TOO = (
    NOT_RUN_OUTPUT
    + """
    q2 - 2 result:
        ❌ Test case failed
        AssertionError: The server accepted 1 connection for 15 requests.
"""
)


def test_a_question_whose_checks_could_not_run_is_reported_as_not_run(tmp_path):
    results = tmp_path / "results.json"
    results.write_text(
        grade.json.dumps(
            {
                "tests": [
                    {
                        "name": "q1",
                        "score": 2,
                        "max_score": 2,
                        "output": "q1 results: All test cases passed!",
                    },
                    {"name": "q2", "score": 0, "max_score": 3, "output": NOT_RUN_OUTPUT},
                    {"name": "q3", "score": 0, "max_score": 3, "output": FAILED_TOO},
                ]
            }
        )
    )
    g = grade.read_results(results)
    assert list(g.not_run) == ["q2"]
    assert g.not_run["q2"].startswith("cannot run here: your churning_client")
    assert g.failed == ["q3"]
    assert "q2 not run on this machine" in g.text()


def test_publish_points_each_lab_at_its_own_secret(tmp_path):
    import publish

    lab = tmp_path / "03-port-budget"
    workflows = lab / "student" / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "classroom.yml").write_text(
        (LABS.parent / ".github" / "classroom" / "classroom.yml").read_text()
    )
    (lab / "autograder").mkdir()
    zip_path = lab / "autograder" / "port_budget-autograder_2026.zip"
    with zipfile.ZipFile(zip_path, "w") as z:
        z.writestr("tests/q1.py", "OK_FORMAT = False\n")
    name, value = publish.publish_lab(lab, "port-budget")
    assert name == "OTTER_AUTOGRADER_PORT_BUDGET"
    workflow = (workflows / "classroom.yml").read_text()
    assert "secrets.OTTER_AUTOGRADER_PORT_BUDGET" in workflow
    assert "secrets.OTTER_AUTOGRADER_B64" not in workflow
    # What the workflow says about its secret holds after publishing: the error a missing
    # secret gives and the header name the lab's own organisation secret.
    assert "the OTTER_AUTOGRADER_PORT_BUDGET secret is not set" in workflow
    assert "set on the template repository" not in workflow
    assert base64.b64decode(value.read_text()) == zip_path.read_bytes()
