"""The lock files answer what requirements.txt and binder/requirements.in ask for."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import check_lock  # noqa: E402


def write_tree(root: Path, files: dict) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_the_committed_lock_files_answer_their_inputs():
    assert check_lock.problems() == []


def test_a_requirement_the_lock_does_not_pin_is_named(tmp_path):
    root = write_tree(
        tmp_path,
        {
            "requirements.txt": "-e .\nnbval>=0.11\nsimpy>=4.1  # the reference model\n",
            "requirements.lock": "nbval==0.11.0\n    # via -r requirements.txt\n",
            "binder/requirements.in": "nbval>=0.11\n",
            "binder/requirements.txt": "nbval==0.11.0\n",
        },
    )
    assert check_lock.problems(root) == [
        "requirements.txt asks for simpy>=4.1, which requirements.lock does not pin"
    ]


def test_a_pin_outside_the_range_asked_for_is_named(tmp_path):
    root = write_tree(
        tmp_path,
        {
            "requirements.txt": "jupyter-book>=1.0.4,<2\n",
            "requirements.lock": "jupyter-book==2.0.1\n",
            "binder/requirements.in": "",
            "binder/requirements.txt": "",
        },
    )
    assert check_lock.problems(root) == [
        "requirements.txt asks for jupyter-book<2,>=1.0.4, but requirements.lock pins jupyter-book==2.0.1"
    ]


def test_binder_at_another_version_than_the_lock_is_named(tmp_path):
    root = write_tree(
        tmp_path,
        {
            "requirements.txt": "numpy>=1.24\n",
            "requirements.lock": "numpy==2.1.0\n",
            "binder/requirements.in": "numpy>=1.24\n",
            "binder/requirements.txt": "numpy==2.0.0\n",
        },
    )
    assert check_lock.problems(root) == [
        "binder/requirements.txt pins numpy==2.0.0, requirements.lock pins numpy==2.1.0"
    ]
