"""Weight of the built course site: its size on disk and what each page makes a browser load.

    python scripts/site_weight.py [--html _build/html] [--limit-mb 2] [--json]

A page's weight is its HTML plus every asset it loads from the site itself (style sheets,
scripts, fonts, images), in bytes as headless Chromium's Resource Timing reports them once
the page has loaded: ``transferSize``, the bytes that came over the network, which is what
page-weight budgets count. The site is served here the way GitHub Pages serves it, text
files gzip-compressed; the uncompressed size (``decodedBodySize``) is shown beside it.
Figures stored as data URIs are part of the HTML. Requests to other hosts are listed apart:
the site is meant to need none.

The limit (2 MB = 2,000,000 bytes) holds what every page transfers, the measure HTTP Archive
and Lighthouse call page weight. Pages that draw widget snapshots are marked W: the widget
manager they load, html-manager's embed.js, is 1.9 MB uncompressed by itself (0.46 MB
transferred). Exits with status 1 when a page is over the limit.

The helpers (finding Chromium, serving the site, listing its pages, weighing one page)
are shared with the browser test, tests/site/test_browser.py.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gzip
import http.server
import json
import os
import shutil
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
LIMIT_BYTES = 2_000_000
# The script that draws widget snapshots (site_assets.WIDGETS_JS); pages that load it are
# weighed by their transferred bytes.
WIDGET_MANAGER = "vendor/html-manager/dist/embed.js"

# Headless, and quiet on a closed network: without the background-networking flags Chromium
# tries to reach Google's services and logs the failures. Playwright gives every launch a
# fresh, temporary profile directory.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL_HINT = (
    "install Chromium and Playwright's Python client: "
    "`sudo apt-get install -y chromium` and `.venv/bin/pip install -r requirements.txt` "
    "(Playwright drives the system Chromium; `playwright install` is not needed)"
)

# What the page has loaded, by the browser's own account.
WEIGHT_JS = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  return {html: nav ? [nav.transferSize, nav.decodedBodySize] : [0, 0],
          resources: performance.getEntriesByType('resource').map(
            r => ({url: r.name, bytes: [r.transferSize, r.decodedBodySize]}))};
}"""
COMPRESSED = {".html", ".css", ".js", ".json", ".svg", ".map", ".txt", ".xml", ".ipynb", ".ttf"}


def find_chromium() -> str | None:
    """The Chromium (or Chrome) executable to drive: $CHROMIUM, else the first one on PATH."""
    if os.environ.get("CHROMIUM"):
        return os.environ["CHROMIUM"]
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def launch(playwright):
    """Headless Chromium through Playwright; raises RuntimeError saying what is missing."""
    exe = find_chromium()
    if exe is None:
        raise RuntimeError(f"no Chromium found: {INSTALL_HINT}")
    return playwright.chromium.launch(executable_path=exe, args=CHROMIUM_FLAGS, timeout=60_000)


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Static files, text ones gzip-compressed when the browser accepts it (as GitHub Pages
    does), so the browser's transfer sizes are those a reader's browser sees."""

    def do_GET(self):
        path = Path(self.translate_path(self.path))
        if path.is_file() and path.suffix in COMPRESSED and "gzip" in self.headers.get("Accept-Encoding", ""):
            body = gzip.compress(path.read_bytes(), compresslevel=6, mtime=0)
            self.send_response(200)
            self.send_header("Content-Type", self.guess_type(str(path)))
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            super().do_GET()

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(directory: Path):
    """Serve ``directory`` on 127.0.0.1, on a port the kernel picks from the unused ones;
    yields the base URL (ending in a slash)."""
    handler = functools.partial(_Handler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def lite_roots(directory: Path) -> list[Path]:
    """The JupyterLite apps built into the site (each directory holding a jupyter-lite.json,
    outermost only)."""
    roots = sorted(p.parent for p in directory.rglob("jupyter-lite.json"))
    return [r for r in roots if not any(o != r and o in r.parents for o in roots)]


def site_pages(directory: Path) -> list[str]:
    """Every page of the built site, as paths relative to it; leaves out Sphinx's sources and
    static files, the JupyterLite app (not a course page), and the root index.html when it
    only redirects to the first chapter."""
    lite = lite_roots(directory)
    pages = []
    for path in sorted(directory.rglob("*.html")):
        rel = path.relative_to(directory)
        if rel.parts[0] in ("_static", "_sources", "_images") or rel.parts[0].startswith("."):
            continue
        if any(root in path.parents for root in lite):
            continue
        if rel.as_posix() == "index.html" and 'http-equiv="Refresh"' in path.read_text():
            continue
        pages.append(rel.as_posix())
    return pages


def site_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


@dataclass
class PageWeight:
    page: str
    html: int  # bytes transferred
    html_decoded: int  # bytes once uncompressed
    assets: dict = field(default_factory=dict)  # same-site URL path -> (transferred, decoded)
    elsewhere: list = field(default_factory=list)  # URLs on other hosts the page asked for

    @property
    def total(self) -> int:
        """Bytes transferred from the site: the page's weight."""
        return self.html + sum(t for t, _ in self.assets.values())

    @property
    def decoded(self) -> int:
        return self.html_decoded + sum(d for _, d in self.assets.values())

    @property
    def widgets(self) -> bool:
        """Whether the page loads the widget manager (it stores widget snapshots)."""
        return any(path.endswith(WIDGET_MANAGER) for path in self.assets)

    def over(self, limit: int = LIMIT_BYTES) -> bool:
        """Whether the page transfers more than ``limit`` bytes."""
        return self.total > limit


def page_weight(page, base_url: str, name: str) -> PageWeight:
    """Weigh the page open in Playwright ``page`` (loaded from ``base_url``)."""
    data = page.evaluate(WEIGHT_JS)
    weight = PageWeight(name, *map(int, data["html"]))
    for r in data["resources"]:
        url = r["url"]
        if url.startswith(base_url):
            path = urlsplit(url).path
            transferred, decoded = map(int, r["bytes"])
            old = weight.assets.get(path, (0, 0))
            weight.assets[path] = (max(old[0], transferred), max(old[1], decoded))
        elif urlsplit(url).scheme in ("http", "https"):
            weight.elsewhere.append(url)
    return weight


def weigh_site(directory: Path = HTML) -> list[PageWeight]:
    """Open every page in a fresh browser context (nothing cached) and weigh it."""
    from playwright.sync_api import sync_playwright

    weights = []
    with serve(directory) as base, sync_playwright() as p:
        browser = launch(p)
        try:
            for name in site_pages(directory):
                context = browser.new_context()
                page = context.new_page()
                page.goto(base + name, wait_until="load", timeout=60_000)
                page.wait_for_timeout(500)  # assets requested by scripts after load
                weights.append(page_weight(page, base, name))
                context.close()
        finally:
            browser.close()
    return weights


def report(weights: list[PageWeight], total_bytes: int, limit: int = LIMIT_BYTES) -> str:
    """The weight table: one line per page, heaviest first, and the site's size."""
    lines = [
        f"site on disk: {total_bytes / 1e6:.2f} MB in total",
        (
            "per page: its HTML plus the site's own assets it loads, in kB transferred "
            "(gzip, as GitHub Pages serves them) and uncompressed; W marks pages with "
            f"widget snapshots. Limit {limit / 1e6:g} MB transferred:"
        ),
        f"  {'page':42s} {'HTML':>8s} {'assets':>8s} {'total':>8s} {'uncompressed':>13s}",
    ]
    for w in sorted(weights, key=lambda w: -w.total):
        mark = "  OVER THE LIMIT" if w.over(limit) else ""
        lines.append(
            f"  {w.page:42s} {w.html / 1e3:7.0f}k {(w.total - w.html) / 1e3:7.0f}k "
            f"{w.total / 1e3:7.0f}k {w.decoded / 1e3:12.0f}k {'W' if w.widgets else ' '}"
            f"{mark}"
        )
    elsewhere = sorted({u for w in weights for u in w.elsewhere})
    if elsewhere:
        lines.append("requested from other hosts (not counted, and not available offline):")
        lines += [f"  {u}" for u in elsewhere]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--html", type=Path, default=HTML, help="the built site (default _build/html)")
    ap.add_argument(
        "--limit-mb",
        type=float,
        default=LIMIT_BYTES / 1e6,
        help="largest allowed page weight in MB transferred; default 2",
    )
    ap.add_argument("--json", action="store_true", help="print the measurements as JSON")
    args = ap.parse_args(argv)
    if not (0 < args.limit_mb <= 1000):
        ap.error(f"--limit-mb: must be between 0 and 1000, got {args.limit_mb}")
    if not (args.html / "index.html").exists():
        print(f"{args.html} holds no built site: run `make build-book` first", file=sys.stderr)
        return 2
    try:
        weights = weigh_site(args.html)
    except (ImportError, RuntimeError) as exc:
        print(f"cannot weigh the pages: {exc}", file=sys.stderr)
        return 2
    limit = int(args.limit_mb * 1e6)
    total = site_bytes(args.html)
    if args.json:
        print(
            json.dumps(
                {
                    "site_bytes": total,
                    "limit_bytes": limit,
                    "pages": [
                        {
                            "page": w.page,
                            "html": w.html,
                            "assets": w.assets,
                            "total": w.total,
                            "uncompressed": w.decoded,
                            "widgets": w.widgets,
                            "over_limit": w.over(limit),
                            "elsewhere": w.elsewhere,
                        }
                        for w in weights
                    ],
                },
                indent=1,
            )
        )
    else:
        print(report(weights, total, limit))
    return 1 if any(w.over(limit) for w in weights) else 0


if __name__ == "__main__":
    sys.exit(main())
