"""Build the JupyterLite site (Python in the browser, no server) into the course site.

Only notebooks that need no sockets go there (``site_assets.is_simulation_only``): Pyodide,
the Python that JupyterLite runs, has no sockets and no namespaces. The course library goes
along as a pure-Python wheel built from this checkout, with the ipywidgets wheels its panels
need, all served by the site itself (piplite). Everything comes from the package registries
or the repository; the build makes no other download.

    python scripts/build_lite.py                       # into _build/html/lite
    python scripts/build_lite.py --output DIR/lite

What the built site still fetches in the reader's browser, from cdn.jsdelivr.net (the
Pyodide URL jupyterlite-pyodide-kernel 0.8.6 is configured with): the Pyodide 314.0.6
runtime (pyodide.mjs, pyodide.asm.wasm, python_stdlib.zip, pyodide-lock.json) and the
Pyodide packages the kernel and the notebook load (micropip, IPython, numpy, matplotlib and
their dependencies). npm's pyodide package has the runtime but none of the packages, and
numpy and matplotlib for Pyodide are on no package registry.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import site_assets

ROOT = site_assets.ROOT
WHEEL_CACHE = site_assets.CACHE.parent / "wheels"
# Pure-Python wheels the notebooks' panels need in Pyodide, at the versions installed here.
# (widgetsnbextension comes with the Pyodide kernel; numpy and matplotlib are Pyodide's.)
BROWSER_WHEELS = ("ipywidgets", "jupyterlab_widgets")


def simulation_notebooks() -> list:
    return [nb for nb in sorted((ROOT / "notebooks").glob("*.ipynb")) if site_assets.is_simulation_only(nb)]


def course_wheel(dest: Path) -> Path:
    """timewait as a py3-none-any wheel: the model and widgets import without scapy or sockets."""
    # Built from a copy, so that setuptools leaves no build/ folder in the checkout.
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "timewait"
        src.mkdir()
        for name in ("pyproject.toml", "README.md", "LICENSE"):
            shutil.copyfile(ROOT / name, src / name)
        shutil.copytree(ROOT / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "--no-build-isolation",
                "-q",
                "-w",
                str(dest),
                str(src),
            ],
            check=True,
        )
    (wheel,) = dest.glob("timewait-*-py3-none-any.whl")
    return wheel


def registry_wheels() -> list:
    WHEEL_CACHE.mkdir(parents=True, exist_ok=True)
    wheels = []
    for name in BROWSER_WHEELS:
        version = importlib.metadata.version(name)
        stem = name.replace("-", "_")
        found = sorted(WHEEL_CACHE.glob(f"{stem}-{version}-py3-none-any.whl"))
        if not found:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "-q",
                    "--no-deps",
                    "--only-binary=:all:",
                    "-d",
                    str(WHEEL_CACHE),
                    f"{name}=={version}",
                ],
                check=True,
            )
            found = sorted(WHEEL_CACHE.glob(f"{stem}-{version}-py3-none-any.whl"))
        if not found:
            raise SystemExit(f"build_lite: no pure-Python wheel of {name} {version}")
        wheels.append(found[0])
    return wheels


def lite_copy(notebook: Path, dest: Path) -> Path:
    """The notebook as JupyterLite opens it: the same cells, on the Pyodide kernel."""
    nb = json.loads(notebook.read_text())
    nb["metadata"]["kernelspec"] = {
        "name": "python",
        "display_name": "Python (Pyodide)",
        "language": "python",
    }
    out = dest / notebook.name
    out.write_text(json.dumps(nb, indent=1) + "\n")
    return out


def build(output: Path) -> None:
    notebooks = simulation_notebooks()
    if not notebooks:
        raise SystemExit("build_lite: no simulation-only notebook in notebooks/")
    jupyter = Path(sys.executable).with_name("jupyter")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "wheels").mkdir()
        (tmp / "contents").mkdir()
        wheels = [course_wheel(tmp / "wheels"), *registry_wheels()]
        for nb in notebooks:
            lite_copy(nb, tmp / "contents")
        if output.exists():
            shutil.rmtree(output)
        cmd = [
            str(jupyter),
            "lite",
            "build",
            "--lite-dir",
            str(tmp),
            "--output-dir",
            str(output),
            "--contents",
            str(tmp / "contents"),
            "--apps",
            "lab",
            "--no-sourcemaps",
        ]
        for w in wheels:
            cmd += ["--piplite-wheels", str(w)]
        done = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, check=False)
        if done.returncode:
            sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
            raise SystemExit(f"build_lite: jupyter lite build failed (exit {done.returncode})")
    print(
        f"build_lite: {', '.join(nb.name for nb in notebooks)} and "
        f"{', '.join(w.name for w in wheels)} in {output}"
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--output", type=Path, default=ROOT / "_build" / "html" / "lite")
    args = ap.parse_args(argv)
    build(args.output.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
