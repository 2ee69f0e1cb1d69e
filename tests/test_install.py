"""The core installs in one line, without the book's dependencies, and its on-call tools run."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(600)
def test_core_installs_into_a_fresh_venv_and_runs_doctor_and_analyze(tmp_path):
    # A copy of the package's own files, so that the build leaves nothing in the checkout.
    source = tmp_path / "timewait-src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py, timewait = venv / "bin" / "python", venv / "bin" / "timewait"
    subprocess.run([str(py), "-m", "pip", "install", "-q", str(source)], check=True, timeout=480)

    for extra in ("matplotlib", "numpy", "ipywidgets", "IPython"):
        probe = subprocess.run([str(py), "-c", f"import {extra}"], capture_output=True)
        assert probe.returncode != 0, f"{extra} came with the core install"

    doctor = subprocess.run([str(timewait), "doctor", "--json"], capture_output=True, text=True, timeout=60)
    assert doctor.returncode == 0, doctor.stderr
    assert '"state_totals"' in doctor.stdout

    pcaps = tmp_path / "pcaps"
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.path.insert(0, 'scripts'); "
            f"import site_assets; site_assets.write_pcaps(site_assets.Path({str(pcaps)!r}))",
        ],
        cwd=ROOT,
        check=True,
        timeout=120,
    )
    capture = next(pcaps.glob("four-way-close__closer-server__*merged_fin_ack-False.pcapng"))
    analyze = subprocess.run(
        [str(py), "-m", "timewait", "analyze", str(capture)], capture_output=True, text=True, timeout=60
    )
    assert analyze.returncode == 0, analyze.stderr
    assert "closed first by server" in analyze.stdout or "closed first by: server" in analyze.stdout
