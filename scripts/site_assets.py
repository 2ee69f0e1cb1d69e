"""What the course site serves from itself, put into book/_static before the site is built.

- ``vendor/``: the JavaScript the pages need, taken from pinned npm packages (checked against
  their sha512), so that no page depends on a CDN:
  @jupyter-widgets/html-manager's ``embed.js`` draws the stored widget snapshots, MathJax
  typesets the mathematics.
- ``pcaps/``: one pcap file per recorded run of each experiment, rebuilt from the segment
  headers kept in ``src/timewait/recordings`` (the same recordings the notebooks fall back to).

    python scripts/site_assets.py          # both
    python scripts/site_assets.py --pcaps  # only the captures

The functions that say which captures belong to which notebook, and which notebooks need no
sockets (and so can run in JupyterLite), are used by the Sphinx extension ``course_site``
and by ``build_lite.py`` too.
"""

from __future__ import annotations

import argparse
import ast
import base64
import datetime
import hashlib
import json
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "book" / "_static"
VENDOR = STATIC / "vendor"
PCAPS = STATIC / "pcaps"
RECORDINGS = ROOT / "src" / "timewait" / "recordings"
NPM_REGISTRY = os.environ.get("NPM_CONFIG_REGISTRY", "https://registry.npmjs.org").rstrip("/")
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "why-tcp-waits" / "npm"

# (npm package, version, sha512 of the tarball as the npm registry publishes it)
NPM = {
    "html-manager": (
        "@jupyter-widgets/html-manager",
        "1.0.15",
        ("sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA=="),
    ),
    "mathjax": (
        "mathjax",
        "3.2.2",
        ("sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw=="),
    ),
    # The Pyodide that jupyterlite-pyodide-kernel 0.8.6 loads: its runtime (not its package
    # index, which points at a CDN) runs the live panels (live-panels.js), and tests/site runs
    # the course library's model in it under Node.
    "pyodide": (
        "pyodide",
        "314.0.6",
        ("sha512-BKDTJyIqFxC4BExLqeRS3f5xvXZIjOt8C3zGLN/Cc7tFxSwvKVhVkchQQ2AGLOtR4YrVOIFxbV8poyDOOmWwxQ=="),
    ),
}
# What the site takes from each package (paths inside the package; a folder is taken whole).
# embed.js is html-manager's build without RequireJS: it bundles the base and controls
# widgets, which are all the course's panels use, at half the size of embed-amd.js. Its
# icon fonts are loaded from beside it. MathJax is loaded by its components rather than as
# the combined tex-mml-chtml.js (1.17 MB): startup.js loads the ones _config.yml names
# (TeX input, CommonHTML output with its TeX font, and assistive MathML for screen
# readers), about 0.76 MB. Left out: MathML input and the contextual menu with its speech
# engine (0.4 MB of the combined file). TeX extensions a formula needs are autoloaded from
# input/tex/extensions.
FILES = {
    "html-manager": ["LICENSE", "dist/embed.js", "dist/embed.js.LICENSE.txt", "dist/*.woff", "dist/*.woff2"],
    "mathjax": [
        "LICENSE",
        "es5/startup.js",
        "es5/core.js",
        "es5/input/tex.js",
        "es5/input/tex",
        "es5/output/chtml.js",
        "es5/output/chtml/fonts/tex.js",
        "es5/output/chtml/fonts/woff-v2",
        "es5/a11y/assistive-mml.js",
    ],
    # The runtime alone: Python compiled to WebAssembly, its standard library and the loader.
    # Fetched only when a reader makes a panel live.
    "pyodide": [
        "package.json",
        "README.md",
        "pyodide.mjs",
        "pyodide.asm.mjs",
        "pyodide.asm.wasm",
        "python_stdlib.zip",
        "pyodide-lock.json",
    ],
}
# embed.js keeps its widget manager class to itself; the live panels need one of their own
# to connect to the panel running in Pyodide. This pinned build names the class ``ot`` where
# it draws the snapshots (``new ot``); vendor() makes it ``window.CourseHTMLManager`` too,
# and fails if the build does not read exactly so.
EMBED_ANCHOR = "window._jupyter_widget_embedder||(window._jupyter_widget_embedder=!0,"
EMBED_CLASS = "(()=>new ot)"
EMBED_EXPOSE = "window.CourseHTMLManager=ot,"

# Pure-Python wheels from PyPI that a live panel imports in Pyodide: ipywidgets and what it
# imports (IPython, for get_ipython, and IPython's own imports). Not served: widgetsnbextension
# and jupyterlab_widgets (JavaScript for notebook front ends), jedi and parso (completion),
# pexpect and ptyprocess (terminals). The course library's own wheel is built from the checkout.
PANEL_WHEELS = {
    "ipywidgets": "8.1.9",
    "comm": "0.2.3",
    "traitlets": "5.16.1",
    "ipython": "9.12.0",
    "asttokens": "3.0.2",
    "decorator": "5.3.1",
    "executing": "2.3.0",
    "ipython_pygments_lexers": "1.1.1",
    "matplotlib_inline": "0.2.2",
    "prompt_toolkit": "3.0.53",
    "pure_eval": "0.2.4",
    "pygments": "2.21.0",
    "stack_data": "0.6.3",
    "wcwidth": "0.9.4",
}
PYODIDE_PYTHON = "3.14"  # the Python of Pyodide 314.0.6 (its ipython pin, 9.12.0, needs >= 3.12)
WHEEL_CACHE = CACHE.parent / "wheels"
# The URLs the pages use, relative to the site root (see _config.yml).
WIDGETS_JS = "_static/vendor/html-manager/dist/embed.js"
MATHJAX_JS = "_static/vendor/mathjax/es5/startup.js"

# Notebooks whose timewait imports are all from these modules need no sockets, no scapy and
# no namespaces: they run anywhere Python, numpy and matplotlib do, JupyterLite included.
SIMULATION_MODULES = (
    "timewait.model",
    "timewait.widgets",
    "timewait.plots",
    "timewait.svgdiagram",
    "timewait.svgchart",
    "timewait.trace",
)


# ---------------------------------------------------------------- vendored JavaScript
def _sha512(path: Path) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


def npm_tarball(key: str) -> Path:
    """The package's tarball from the npm registry, cached and checked against its pinned
    sha512. Fetched over HTTPS with the standard library, so neither npm nor Node is needed."""
    name, version, integrity = NPM[key]
    CACHE.mkdir(parents=True, exist_ok=True)
    tarball = CACHE / (name.lstrip("@").replace("/", "-") + f"-{version}.tgz")
    if not tarball.exists() or _sha512(tarball) != integrity:
        url = f"{NPM_REGISTRY}/{name}/-/{name.split('/')[-1]}-{version}.tgz"
        try:
            with (
                urllib.request.urlopen(url, timeout=120) as response,
                tempfile.NamedTemporaryFile(dir=CACHE, delete=False) as part,
            ):
                shutil.copyfileobj(response, part)
        except OSError as e:
            raise SystemExit(
                f"site assets: could not fetch {url} ({e}); the site's JavaScript "
                "comes from the npm registry, which must be reachable once "
                f"(the tarballs are then cached in {CACHE})"
            ) from None
        Path(part.name).replace(tarball)
    if _sha512(tarball) != integrity:
        raise SystemExit(f"site assets: {tarball.name} does not match its pinned sha512")
    return tarball


def unpack(tarball: Path, dest: Path) -> None:
    """Extract the regular files of an npm tarball into ``dest``. Links, devices and paths
    that would land outside ``dest`` are skipped (``extractall(filter="data")`` does the
    same, but only from Python 3.11.4 and 3.12 on)."""
    root = dest.resolve()
    with tarfile.open(tarball) as tar:
        for member in tar:
            target = (root / member.name).resolve()
            if not member.isfile() or root not in target.parents:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with tar.extractfile(member) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)


def vendor(dest: Path = VENDOR) -> list:
    """Unpack what the site needs from each package into ``dest``; returns the files written."""
    written = []
    for key, patterns in FILES.items():
        out = dest / key
        if out.exists():
            shutil.rmtree(out)
        with tempfile.TemporaryDirectory() as tmp:
            unpack(npm_tarball(key), Path(tmp))
            pkg = Path(tmp) / "package"
            for pattern in patterns:
                for src in sorted(pkg.glob(pattern)):
                    files = sorted(p for p in src.rglob("*") if p.is_file()) if src.is_dir() else [src]
                    for f in files:
                        target = out / f.relative_to(pkg)
                        target.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(f, target)
                        written.append(target)
    expose_widget_manager(dest / "html-manager" / "dist" / "embed.js")
    written += panel_wheels(dest / "panels")
    # Generated at build time from the pinned packages; not part of the repository.
    (dest / ".gitignore").write_text("*\n")
    return written


def expose_widget_manager(embed: Path) -> None:
    text = embed.read_text()
    if text.count(EMBED_ANCHOR) != 1 or EMBED_CLASS not in text:
        raise SystemExit(f"site assets: {embed.name} is not the build EMBED_ANCHOR describes")
    embed.write_text(text.replace(EMBED_ANCHOR, EMBED_EXPOSE + EMBED_ANCHOR))


def pypi_wheel(name: str, version: str) -> Path:
    """The pure-Python wheel of ``name`` ``version`` from PyPI, for Pyodide's Python
    (cached)."""
    WHEEL_CACHE.mkdir(parents=True, exist_ok=True)
    pattern = f"{name.replace('-', '_')}-{version}-*-none-any.whl"
    found = sorted(WHEEL_CACHE.glob(pattern))
    if not found:
        import subprocess

        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--only-binary=:all:",
                "--python-version",
                PYODIDE_PYTHON,
                "--platform",
                "any",
                "--implementation",
                "py",
                "-d",
                str(WHEEL_CACHE),
                f"{name}=={version}",
            ],
            check=True,
        )
        found = sorted(WHEEL_CACHE.glob(pattern))
    if not found:
        raise SystemExit(f"site assets: no pure-Python wheel of {name} {version}")
    return found[0]


def panel_wheels(dest: Path) -> list:
    """What a live panel loads besides the runtime, and ``panels.json`` listing it with the
    runtime's files and their sizes, for the page to fetch and announce: a memory snapshot of
    Pyodide's Python with the panels' packages (PANEL_WHEELS and timewait) imported, and the
    package files that Python did not import (make_snapshot). Also every package file, byte-
    compiled, for a browser that cannot restore the snapshot (``fallback``: fetched only then)."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        wheels = []
        for name, version in PANEL_WHEELS.items():
            found = pypi_wheel(name, version)
            wheels.append(Path(shutil.copyfile(found, Path(tmp) / found.name)))
        import build_lite

        wheels.append(build_lite.course_wheel(Path(tmp)))
        bundle = compile_bundle(wheels, dest.parent / "pyodide", dest / PANEL_BUNDLE)
        snapshot, rest = make_snapshot(bundle, dest.parent / "pyodide", dest)
    runtime = ["pyodide.asm.wasm", "pyodide.asm.mjs", "python_stdlib.zip", "pyodide.mjs", "pyodide-lock.json"]
    sizes = {f: (dest.parent / "pyodide" / f).stat().st_size for f in runtime}
    sizes[snapshot.name] = snapshot.stat().st_size
    sizes[rest.name] = rest.stat().st_size
    (dest / "panels.json").write_text(
        json.dumps(
            {
                "snapshot": snapshot.name,
                "rest": rest.name,
                "fallback": {"bundle": bundle.name, "bytes": bundle.stat().st_size},
                "packages": [w.name for w in wheels],
                "bytes": sizes,
            },
            indent=1,
        )
        + "\n"
    )
    return [snapshot, rest, bundle, dest / "panels.json"]


PANEL_BUNDLE = "panel-packages.zip"
PANEL_SNAPSHOT = "panel-python.snapshot.gz"
PANEL_REST = "panel-packages-not-imported.zip"
# Run under Node in the vendored Pyodide: install the wheels, compile every module to bytecode
# for Pyodide's own Python, and keep the bytecode in place of the sources, as Pyodide ships
# its own packages. The browser then imports without compiling: IPython alone is about a
# hundred modules. The panels get site-packages as one zip; JupyterLite's kernel gets each
# wheel rebuilt under its own name, the .pyc files in place of the .py ones and its RECORD
# rewritten to match, for Pyodide's loader to install from the kernel's lock file.
_PYODIDE_JS = """
import {{ loadPyodide }} from "{index}pyodide.mjs";
import {{ readFileSync, writeFileSync }} from "node:fs";
const py = await loadPyodide({{ indexURL: "{index}" }});
const wheels = {wheels};
for (const [i, w] of wheels.entries())
  py.unpackArchive(new Uint8Array(readFileSync(w)), "wheel", {{ extractDir: {folder} }});
py.runPython(`
import compileall, os, shutil

def bytecode_only(packages):
    assert compileall.compile_dir(packages, quiet=1, legacy=True, optimize=0)
    for root, _, files in os.walk(packages):
        for f in files:
            if f.endswith(".py") and os.path.exists(os.path.join(root, f + "c")):
                os.remove(os.path.join(root, f))
{python}`);
{write}
"""
_BUNDLE_PY = """
bytecode_only("/bundle")
shutil.make_archive("/tmp/bundle", "zip", "/bundle")
"""
_WHEELS_PY = """
import base64, glob, hashlib, zipfile

os.mkdir("/out")
for i, name in enumerate({names}):
    root = f"/wheels/{{i}}"
    bytecode_only(root)
    (record,) = glob.glob("*.dist-info/RECORD", root_dir=root)
    files = sorted(
        os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs
    )
    files.remove(record)
    lines = []
    for f in files:
        data = open(os.path.join(root, f), "rb").read()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        lines.append(f"{{f}},sha256={{digest}},{{len(data)}}")
    with open(os.path.join(root, record), "w") as out:
        for line in [*lines, record + ",,"]:
            print(line, file=out)
    with zipfile.ZipFile(f"/out/{{name}}", "w", zipfile.ZIP_DEFLATED) as z:
        for f in [*files, record]:
            z.write(os.path.join(root, f), f)
"""


def _node(script: str, what: str) -> None:
    """Run the ES module ``script`` under Node, for ``what`` (said if it fails)."""
    import subprocess

    node = shutil.which("node")
    if node is None:
        raise SystemExit(
            f"site assets: Node.js is needed for {what} in Pyodide (scripts/system-deps.sh installs it)"
        )
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "script.mjs").write_text(script)
        module = str(Path(tmp) / "script.mjs")
        done = subprocess.run([node, module], capture_output=True, text=True, timeout=600)
    if done.returncode:
        raise SystemExit(f"site assets: {what} failed: {done.stderr[-2000:]}")


def _in_pyodide(pyodide: Path, wheels: list, folder: str, python: str, write: str, what: str) -> None:
    """Run _PYODIDE_JS under Node: ``wheels`` unpacked into ``folder`` (a JS expression of
    the wheel's index ``i``), then ``python``, then the JS ``write``."""
    script = _PYODIDE_JS.format(
        index=f"{pyodide.resolve()}/",
        wheels=json.dumps([str(w) for w in wheels]),
        folder=folder,
        python=python,
        write=write,
    )
    _node(script, f"byte-compiling {what}")


def compile_bundle(wheels: list, pyodide: Path, out: Path) -> Path:
    """The wheels installed and byte-compiled in Pyodide (under Node), as one zip of
    site-packages."""
    write = f'writeFileSync({json.dumps(str(out))}, py.FS.readFile("/tmp/bundle.zip"));'
    _in_pyodide(pyodide, wheels, '"/bundle"', _BUNDLE_PY, write, "the live panels' packages")
    if not out.exists():
        raise SystemExit(f"site assets: byte-compiling the panels' packages wrote no {out}")
    return out


# Run under Node: Pyodide's Python with the byte-compiled packages imported, saved as a memory
# snapshot (Pyodide's _makeSnapshot / makeMemorySnapshot). A page restores it in place of
# starting Python and importing the panels' 600 modules, most of a cold start: on this
# course's 2-core machine with nothing else running, 3.6 s under Node from loading the runtime
# to `import timewait.webpage` done, 0.7 s from the snapshot to a panel started. The
# snapshot holds Python's memory, not its
# files, so the page still unpacks the package files no imported module came from, for a
# module imported later. A snapshot works only with the runtime build that made it; Pyodide
# checks its build id when restoring.
_SNAPSHOT_JS = """
import {{ loadPyodide }} from "{index}pyodide.mjs";
import {{ readFileSync, writeFileSync }} from "node:fs";
import {{ gzipSync }} from "node:zlib";
const py = await loadPyodide({{ indexURL: "{index}", _makeSnapshot: true }});
const site = py.runPython("import site; site.getsitepackages()[0]");
py.unpackArchive(new Uint8Array(readFileSync({bundle})), "zip", {{ extractDir: site }});
py.runPython("import gc, timewait.webpage; gc.collect()");
writeFileSync({snapshot}, gzipSync(py.makeMemorySnapshot(), {{ level: 9 }}));
py.runPython(`
import os, sys, zipfile
files = [getattr(m, "__file__", None) for m in list(sys.modules.values())]
imported = {{os.path.realpath(f) for f in files if f}}
with zipfile.ZipFile("/tmp/rest.zip", "w", zipfile.ZIP_DEFLATED) as z:
    for root, dirs, files in os.walk("${{site}}"):
        dirs.sort()
        for f in sorted(files):
            path = os.path.join(root, f)
            if path not in imported:
                z.write(path, os.path.relpath(path, "${{site}}"))
`);
writeFileSync({rest}, py.FS.readFile("/tmp/rest.zip"));
"""


def make_snapshot(bundle: Path, pyodide: Path, dest: Path) -> tuple:
    """(snapshot, rest) in ``dest``: the gzip-compressed memory snapshot of Pyodide's Python
    after ``import timewait.webpage`` from ``bundle``, and the zip of the bundle's files that
    no module imported by then came from (_SNAPSHOT_JS)."""
    snapshot, rest = dest / PANEL_SNAPSHOT, dest / PANEL_REST
    for f in (snapshot, rest):
        f.unlink(missing_ok=True)
    script = _SNAPSHOT_JS.format(
        index=f"{pyodide.resolve()}/",
        bundle=json.dumps(str(bundle)),
        snapshot=json.dumps(str(snapshot)),
        rest=json.dumps(str(rest)),
    )
    _node(script, "making the live panels' Python snapshot")
    if not (snapshot.exists() and rest.exists()):
        raise SystemExit(f"site assets: the snapshot run wrote no {snapshot.name} or {rest.name}")
    return snapshot, rest


def compile_wheels(wheels: list, pyodide: Path, dest: Path) -> list:
    """Each wheel rebuilt in ``dest`` under its own name, byte-compiled in Pyodide (under
    Node): the .pyc files for Pyodide's Python in place of the .py ones, RECORD to match."""
    names = [w.name for w in wheels]
    write = (
        f"for (const n of {json.dumps(names)})\n"
        f"  writeFileSync({json.dumps(str(dest))} + '/' + n, py.FS.readFile('/out/' + n));"
    )
    python = _WHEELS_PY.format(names=names)
    _in_pyodide(pyodide, wheels, "`/wheels/${i}`", python, write, "the kernel's packages")
    out = [dest / n for n in names]
    missing = [p.name for p in out if not p.is_file()]
    if missing:
        raise SystemExit(f"site assets: byte-compiling wrote no {', '.join(missing)}")
    return out


# ---------------------------------------------------------------- captures of recorded runs
def pcap_name(experiment: str, params: dict) -> str:
    """``lost-final-ack__fin_losses-0__new_connection-none__time_wait-True.pcapng``: the
    options, leaving out those at the value the result's summary also leaves out
    (``QUIET_OPTIONS``, such as ``family=4``), so that a capture keeps its name when an
    experiment gains an option."""
    from timewait.experiments import get

    quiet = get(experiment).result.QUIET_OPTIONS
    parts = [experiment] + [
        f"{k}-{v}" for k, v in sorted(params.items()) if not (k in quiet and quiet[k] == v)
    ]
    return "__".join(parts) + ".pcapng"


def recorded_runs():
    """(experiment, params, result dict, recording date) for every recorded run."""
    for path in sorted(RECORDINGS.glob("*.json")):
        data = json.loads(path.read_text())
        for entry in data["runs"]:
            yield data["experiment"], entry["params"], entry["result"], data["date"]


_SCAPY_FLAGS = {
    "SYN": "S",
    "FIN": "F",
    "RST": "R",
    "PSH": "P",
    "ACK": "A",
    "URG": "U",
    "ECE": "E",
    "CWR": "C",
}


# What a segment's note means, written as its pcapng packet comment.
# Payload bytes are not recorded: a printable stand-in of the same length. (Zeros on port
# 5000 make Wireshark's GSM IPA dissector claim the segment and call it malformed.)
STAND_IN = b"payload not recorded; stand-in of the same length. "


def _tcp_options(seg: dict) -> list:
    """The segment's TCP options as captured, or its timestamps alone for a recording made
    before the options were kept."""
    from scapy.layers.inet import TCP

    raw = bytes.fromhex(seg.get("tcp_options") or "")
    if raw:  # scapy parses options from a header: 20 bytes with the data offset, then them
        header = bytes(12) + bytes([(20 + len(raw)) // 4 << 4, 0]) + bytes(6)
        return TCP(header + raw).options
    if seg.get("tsval") is not None:
        return [("NOP", None), ("NOP", None), ("Timestamp", (seg["tsval"], seg["tsecr"] or 0))]
    return []


def trace_packets(trace: list, date: str) -> list:
    """Ethernet frames for a recorded trace, as the capture saw them: the recorded addresses
    (127.0.0.1 on both sides for recordings that kept none), the recorded ports, flags, wire
    sequence and acknowledgement numbers, window and TCP options (recordings made before these
    were kept: a window of 8192 and the timestamps option alone) and payload length. Payload
    bytes are not recorded: a printable stand-in of the same length takes their place. A
    segment the experiment dropped, held or delivered late carries a pcapng packet comment
    saying so. Times count from midnight UTC of the recording date."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw

    from timewait.capture import segment_comment

    t0 = datetime.datetime.fromisoformat(date).replace(tzinfo=datetime.timezone.utc).timestamp()
    packets = []
    for seg in trace:
        flags = "".join(_SCAPY_FLAGS[f] for f in seg["flags"].split("|") if f)
        window = seg.get("window")
        tcp = TCP(
            sport=seg["sport"],
            dport=seg["dport"],
            flags=flags,
            seq=seg["seq_abs"] % 2**32,
            ack=(seg["ack_abs"] or 0) % 2**32,
            window=8192 if window is None else window,
            options=_tcp_options(seg),
        )
        src, dst = seg.get("saddr") or "127.0.0.1", seg.get("daddr") or "127.0.0.1"
        ip = IPv6(src=src, dst=dst) if ":" in src else IP(src=src, dst=dst)
        p = Ether(src="00:00:00:00:00:00", dst="00:00:00:00:00:00") / ip / tcp
        if seg.get("length"):
            n = seg["length"]
            p = p / Raw((STAND_IN * (n // len(STAND_IN) + 1))[:n])
        if seg.get("note"):
            p.comments = [segment_comment(seg["note"]).encode()]
        p.time = t0 + seg["t"]
        packets.append(p)
    return packets


def has_pcap(result: dict) -> bool:
    """Whether a recorded run kept a trace a pcapng can be written from."""
    trace = result.get("trace") or []
    return bool(trace) and all(s.get("seq_abs") is not None and s.get("sport") is not None for s in trace)


def write_pcaps(dest: Path = PCAPS) -> list:
    """One pcapng per recorded run that kept a trace; returns the files written."""
    from scapy.utils import wrpcapng

    dest.mkdir(parents=True, exist_ok=True)
    for old in [*dest.glob("*.pcap"), *dest.glob("*.pcapng")]:
        old.unlink()
    written = []
    for experiment, params, result, date in recorded_runs():
        if not has_pcap(result):
            continue
        path = dest / pcap_name(experiment, params)
        wrpcapng(str(path), trace_packets(result["trace"], date))
        written.append(path)
    return written


# ---------------------------------------------------------------- what a notebook runs
def _code(notebook: Path) -> list:
    nb = json.loads(Path(notebook).read_text())
    trees = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
        try:
            # Notebook cells may await at top level (JupyterLite's package installer does).
            trees.append(
                compile(
                    "\n".join(lines),
                    str(notebook),
                    "exec",
                    flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
                )
            )
        except SyntaxError:
            continue
    return trees


def _literal(node):
    try:
        return True, ast.literal_eval(node)
    except ValueError:
        return False, None


def notebook_runs(notebook: Path) -> list:
    """``(experiment, params)`` for each ``run("name", ...)`` in the notebook's code;
    ``params`` is None when a keyword's value is not a literal (e.g. a loop variable)."""
    runs = []
    for tree in _code(notebook):
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", None) == "run"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                continue
            params = {}
            for kw in node.keywords:
                if kw.arg in ("timeout", "capture_frames"):
                    continue
                ok, value = _literal(kw.value)
                if kw.arg is None or not ok:
                    params = None
                    break
                params[kw.arg] = value
            runs.append((node.args[0].value, params))
    return runs


def notebook_pcaps(notebook: Path) -> list:
    """``(file name, experiment, params)`` of the recorded runs matching the notebook's
    experiment calls, in the notebook's order: the exact parameter set when the call spells
    it out, every recorded run of that experiment otherwise."""
    sys.path.insert(0, str(ROOT / "src"))
    from timewait.experiments import get

    recorded = {}
    for experiment, params, result, _ in recorded_runs():
        if result.get("trace"):
            recorded.setdefault(experiment, []).append(params)
    found = []
    for experiment, params in notebook_runs(notebook):
        variants = recorded.get(experiment, [])
        if params is not None:
            try:
                full = get(experiment).check(params)
            except ValueError:
                continue
            variants = [v for v in variants if v == full]
        for v in variants:
            item = (pcap_name(experiment, v), experiment, v)
            if item not in found:
                found.append(item)
    return found


PANEL_CALLS = ("sequence_explorer", "sweep_explorer", "port_budget_calculator")


def notebook_panels(notebook: Path) -> dict:
    """``{model_id: (function, kwargs)}`` for each widget panel the notebook shows: the
    timewait.widgets function its cell calls and the keyword arguments, literals or names
    bound to a literal in an earlier cell; ``kwargs`` is None when one is neither."""
    nb = json.loads(Path(notebook).read_text())
    names, panels = {}, {}
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        try:
            tree = ast.parse("".join(cell["source"]))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
            ):
                ok, value = _literal(node.value)
                if ok:
                    names[node.targets[0].id] = value
        calls = [
            n
            for n in ast.walk(tree)
            if isinstance(n, ast.Call) and getattr(n.func, "id", None) in PANEL_CALLS
        ]
        views = [
            o["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]
            for o in cell.get("outputs", [])
            if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
        ]
        if len(calls) != 1 or len(views) != 1:
            continue
        kwargs = {}
        for kw in calls[0].keywords:
            ok, value = _literal(kw.value)
            if not ok and isinstance(kw.value, ast.Name) and kw.value.id in names:
                ok, value = True, names[kw.value.id]
            if kw.arg is None or not ok:
                kwargs = None
                break
            kwargs[kw.arg] = value
        panels[views[0]] = (calls[0].func.id, kwargs)
    return panels


def timewait_imports(notebook: Path) -> set:
    """The timewait modules a notebook imports."""
    mods = set()
    for tree in _code(notebook):
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                mods.add(node.module)
            elif isinstance(node, ast.Import):
                mods.update(a.name for a in node.names)
    return {m for m in mods if m == "timewait" or m.startswith("timewait.")}


def is_simulation_only(notebook: Path) -> bool:
    """True when the notebook uses timewait's model and drawing only, never an experiment."""
    mods = timewait_imports(notebook)
    only_model = bool(mods) and all(
        any(m == s or m.startswith(s + ".") for s in SIMULATION_MODULES) for m in mods
    )
    return only_model and not notebook_runs(notebook)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pcaps", action="store_true", help="only write the captures")
    args = ap.parse_args(argv)
    if not args.pcaps:
        files = vendor()
        size = sum(f.stat().st_size for f in files)
        print(f"site assets: {len(files)} vendored files ({size / 1e6:.1f} MB) in {VENDOR.relative_to(ROOT)}")
    pcaps = write_pcaps()
    print(f"site assets: {len(pcaps)} captures of recorded runs in {PCAPS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
