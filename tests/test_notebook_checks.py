"""nbval really compares: a notebook whose stored output was edited must fail the check."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _nbval(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbval",
            str(path),
            "-q",
            "-p",
            "no:cacheprovider",
            "--nbval-sanitize-with",
            str(ROOT / "tests" / "nbval_sanitize.cfg"),
            "-p",
            "no:xdist",
            "--rootdir",
            str(path.parent),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=path.parent,
    )


def test_an_edited_stored_output_fails_nbval(tmp_path, full_tier):
    nb_path = ROOT / "notebooks" / "open-close.ipynb"
    nb = json.loads(nb_path.read_text())
    edited = False
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            text = "".join(out.get("text", []))
            if "TIME_WAIT" in text and out.get("name") == "stdout":
                out["text"] = [text.replace("TIME_WAIT", "CLOSED", 1)]
                edited = True
                break
        if edited:
            break
    assert edited, "the notebook no longer prints a TIME_WAIT line to edit"
    copy = tmp_path / "open-close.ipynb"
    copy.write_text(json.dumps(nb))
    result = _nbval(copy)
    assert result.returncode != 0, result.stdout[-2000:]
    assert "1 failed" in result.stdout, result.stdout[-2000:]

    shutil.copy(nb_path, copy)  # and the unedited notebook passes in the same place
    assert _nbval(copy).returncode == 0
