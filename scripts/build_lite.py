"""Build the JupyterLite site (Python in the browser, no server) into the course site.

Only notebooks that need no sockets go there (``site_assets.is_simulation_only``): Pyodide,
the Python that JupyterLite runs, has no sockets and no namespaces. Everything the reader's
browser fetches is served by the site itself; the build takes it from the package
registries or the repository and makes no other download.

    python scripts/build_lite.py                       # into _build/html/lite
    python scripts/build_lite.py --output DIR/lite

The Python kernel (jupyterlite-pyodide-kernel 0.8.6) runs the Pyodide runtime the live
panels run, from the site (``../_static/vendor/pyodide/``, npm's ``pyodide`` 314.0.6,
13.4 MB, put there by site_assets.py: build the book first). Pyodide loads packages by name
from a lock file; the one in npm's package names wheels that only Pyodide's CDN serves, so
the kernel is given its own (``static/pyodide-lock/pyodide-lock.json``, written with the
``pyodide-lock`` tool) listing only the 19 wheels served beside it (7.3 MB): the kernel's
own packages (micropip, piplite, the pyodide-kernel and ipykernel wheels
jupyterlite-pyodide-kernel ships) and the pure-Python packages they import (IPython and its
dependencies, jedi and parso), from PyPI for Pyodide's Python. Each is rebuilt byte-compiled
in the runtime, as the live panels' packages are (``site_assets.compile_wheels``), so the
browser imports them without compiling. The kernel loads them all while the runtime starts.
piplite, with its fallback to PyPI switched off, serves what a notebook installs: the course
library (a pure-Python wheel built from this checkout) and ipywidgets (0.7 MB together).
With the JupyterLite app (2.6 MB), a reader's browser fetches about 24 MB on first use.
numpy and matplotlib for Pyodide are on no package registry, so the notebooks here use
neither.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import site_assets

ROOT = site_assets.ROOT
# Pure-Python wheels the notebooks' panels need in Pyodide, at the versions installed here,
# installed by the notebook with piplite. (widgetsnbextension comes with the Pyodide kernel.)
BROWSER_WHEELS = ("ipywidgets", "jupyterlab_widgets")

KERNEL_PLUGIN = "@jupyterlite/pyodide-kernel-extension:kernel"
# The runtime: the live panels' Pyodide, from the site's vendored copy. The leading "./"
# makes JupyterLite resolve the URL against the lite folder rather than the app's page.
PYODIDE_VERSION = site_assets.NPM["pyodide"][1]
RUNTIME = Path("_static") / "vendor" / "pyodide"  # beside the lite folder, in the site
RUNTIME_URL = f"./../{RUNTIME.as_posix()}/pyodide.mjs"
RUNTIME_FILES = ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip")
# The kernel's lock file and its wheels, in the lite folder.
LOCK_DIR = Path("static") / "pyodide-lock"
# What the kernel installs as it starts (the worker of jupyterlite-pyodide-kernel 0.8.6:
# micropip, then piplite, then ipykernel, comm, pyodide-kernel, jedi and ipython). Named in
# loadPyodideOptions.packages, they load from the lock while the runtime starts.
KERNEL_PACKAGES = ("micropip", "piplite", "ipykernel", "comm", "pyodide-kernel", "jedi", "ipython")
# Their wheels that jupyterlite-pyodide-kernel ships (in its lab extension's pypi folder).
EXTENSION_WHEELS = ("piplite", "ipykernel", "pyodide_kernel")
# The rest, pure Python from PyPI: micropip, jedi and parso at the versions Pyodide 314.0.6
# pins, IPython and what it imports at the versions the live panels run (site_assets).
KERNEL_WHEELS = {
    "micropip": "0.11.1",
    "jedi": "0.19.2",
    "parso": "0.8.6",
    **{name: v for name, v in site_assets.PANEL_WHEELS.items() if name != "ipywidgets"},
}


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
    return [site_assets.pypi_wheel(name, importlib.metadata.version(name)) for name in BROWSER_WHEELS]


def extension_wheels() -> list:
    """The kernel's own wheels, as the installed jupyterlite-pyodide-kernel ships them."""
    pypi = Path(sys.prefix) / "share/jupyter/labextensions/@jupyterlite/pyodide-kernel-extension/static/pypi"
    wheels = []
    for name in EXTENSION_WHEELS:
        found = sorted(pypi.glob(f"{name}-*-py3-none-any.whl"))
        if len(found) != 1:
            raise SystemExit(f"build_lite: expected one {name} wheel in {pypi}, found {len(found)}")
        wheels += found
    return wheels


def runtime(site: Path) -> Path:
    """The vendored Pyodide runtime of the site the lite folder goes into, checked to be the
    version the kernel expects."""
    from jupyterlite_pyodide_kernel.constants import PYODIDE_VERSION as KERNEL_PYODIDE

    if KERNEL_PYODIDE != PYODIDE_VERSION:
        raise SystemExit(
            f"build_lite: jupyterlite-pyodide-kernel expects Pyodide {KERNEL_PYODIDE}, "
            f"the site serves {PYODIDE_VERSION} (site_assets.NPM)"
        )
    folder = site / RUNTIME
    missing = [f for f in (*RUNTIME_FILES, "package.json") if not (folder / f).is_file()]
    if missing:
        raise SystemExit(
            f"build_lite: no Pyodide runtime in {folder} (missing {', '.join(missing)}): "
            "build the book first (site_assets.py, then jupyter-book; see `make build-book`)"
        )
    served = json.loads((folder / "package.json").read_text())["version"]
    if served != PYODIDE_VERSION:
        raise SystemExit(f"build_lite: {folder} holds Pyodide {served}, not {PYODIDE_VERSION}")
    return folder


def kernel_lock(pyodide: Path, dest: Path) -> list:
    """``dest/pyodide-lock.json``, naming only the wheels beside it: the kernel's own
    (:func:`extension_wheels`) and KERNEL_WHEELS, byte-compiled in the runtime
    (``site_assets.compile_wheels``), with their sha256 and dependencies as the
    ``pyodide-lock`` tool reads them from the wheels. Fails if a dependency is missing or a
    KERNEL_PACKAGES name is not in the lock. Returns the files written."""
    from pyodide_lock import PyodideLockSpec
    from pyodide_lock.spec import InfoSpec
    from pyodide_lock.utils import add_wheels_to_spec

    dest.mkdir(parents=True)
    sources = [*extension_wheels(), *(site_assets.pypi_wheel(n, v) for n, v in KERNEL_WHEELS.items())]
    wheels = [Path(shutil.copyfile(w, dest / w.name)) for w in sources]
    # The runtime's platform and ABI, which Pyodide checks the lock against.
    info = json.loads((pyodide / "pyodide-lock.json").read_text())["info"]
    spec = PyodideLockSpec(info=InfoSpec(**{"version": PYODIDE_VERSION, **info}), packages={})
    try:
        spec = add_wheels_to_spec(spec, wheels, base_path=dest)
    except RuntimeError as e:  # a dependency without a wheel here
        raise SystemExit(f"build_lite: the kernel's lock is incomplete: {e}") from None
    missing = [p for p in KERNEL_PACKAGES if p not in spec.packages]
    if missing:
        raise SystemExit(f"build_lite: no wheel for {', '.join(missing)} in the kernel's lock")
    # The wheels served are those byte-compiled for Pyodide's Python, as the live panels'
    # packages are: the kernel then imports IPython and jedi without compiling their sources
    # in the browser. (pyodide-lock reads a package's import names from its .py files, so
    # the lock is written from the source wheels, then given the served wheels' sha256.)
    wheels = site_assets.compile_wheels(sources, pyodide, dest)
    served = {w.name: hashlib.sha256(w.read_bytes()).hexdigest() for w in wheels}
    for package in spec.packages.values():
        package.sha256 = served[package.file_name]
    lock = dest / "pyodide-lock.json"
    spec.to_json(lock, indent=1)
    return [lock, *wheels]


def lite_config(lite_dir: Path) -> None:
    """jupyter-lite.json: the Pyodide kernel on the site's runtime and the kernel's lock,
    with piplite's fallback to PyPI switched off."""
    settings = {
        "pyodideUrl": RUNTIME_URL,
        "disablePyPIFallback": True,
        "loadPyodideOptions": {
            "lockFileURL": f"./{LOCK_DIR.as_posix()}/pyodide-lock.json",
            "packages": list(KERNEL_PACKAGES),
        },
    }
    config = {
        "jupyter-lite-schema-version": 0,
        "jupyter-config-data": {"litePluginSettings": {KERNEL_PLUGIN: settings}},
    }
    (lite_dir / "jupyter-lite.json").write_text(json.dumps(config, indent=1) + "\n")


def _mb(files) -> str:
    return f"{sum(f.stat().st_size for f in files) / 1e6:.1f} MB"


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
    pyodide = runtime(output.parent)
    jupyter = Path(sys.executable).with_name("jupyter")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "wheels").mkdir()
        (tmp / "contents").mkdir()
        wheels = [course_wheel(tmp / "wheels"), *registry_wheels()]
        for nb in notebooks:
            lite_copy(nb, tmp / "contents")
        lite_config(tmp)
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
    written = json.loads((output / "jupyter-lite.json").read_text())["jupyter-config-data"]
    kernel = written["litePluginSettings"][KERNEL_PLUGIN]
    if kernel.get("pyodideUrl") != RUNTIME_URL or not kernel.get("disablePyPIFallback"):
        raise SystemExit("build_lite: jupyter lite build did not keep the kernel's settings")
    lock = kernel_lock(pyodide, output / LOCK_DIR)
    print(
        f"build_lite: {', '.join(nb.name for nb in notebooks)} and "
        f"{', '.join(w.name for w in wheels)} in {output}; the kernel runs Pyodide "
        f"{PYODIDE_VERSION} from {RUNTIME.as_posix()} ({_mb(pyodide / f for f in RUNTIME_FILES)}) "
        f"with {len(lock) - 1} wheels in {LOCK_DIR.as_posix()} ({_mb(lock)})"
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--output", type=Path, default=ROOT / "_build" / "html" / "lite")
    args = ap.parse_args(argv)
    build(args.output.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
