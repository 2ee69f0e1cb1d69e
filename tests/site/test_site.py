"""The built site (run after `jupyter-book build`): pages, figures with alt text, buttons."""

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# TIMEWAIT_SITE checks a site built elsewhere (jupyter-book build --path-output DIR).
HTML = Path(os.environ.get("TIMEWAIT_SITE", ROOT / "_build" / "html"))
sys.path.insert(0, str(ROOT / "scripts"))
import site_assets  # noqa: E402 (after the path line above: scripts/ is not a package)

pytestmark = pytest.mark.skipif(
    not (HTML / "index.html").exists(), reason="the site is not built; `make test-book` builds it first"
)


def pages():
    return sorted(
        p
        for p in HTML.rglob("*.html")
        if "_static" not in p.parts and p.name not in ("genindex.html", "search.html")
    )


def test_every_toc_entry_has_a_page():
    toc = (ROOT / "_toc.yml").read_text()
    for entry in re.findall(r"(?:root|file):\s*(\S+)", toc):
        assert (HTML / f"{entry}.html").exists(), entry


def test_chapter_one_shows_the_captured_sequence_diagrams():
    page = (HTML / "book" / "open-close.html").read_text()
    # Each figure an inline SVG named by its alt text.
    figures = re.findall(
        r'<figure class="timewait-figure">.*?<svg role="img" aria-label="([^"]*)"', page, re.S
    )
    assert len(figures) >= 3
    assert figures[0].startswith("Four-way close: the client closes first. Sequence diagram")
    assert "client to server: FIN|ACK" in page


def test_no_image_lacks_alt_text():
    for page in pages():
        # Images inside stored widget state are JSON strings, their quotes escaped.
        for img in re.findall(r"<img[^>]*>", page.read_text().replace('\\"', '"')):
            if "logo" in img:
                continue
            alt = re.search(r'alt="([^"]*)"', img)
            assert alt and alt.group(1).strip(), f"{page.relative_to(HTML)}: {img[:120]}"


def test_notebook_pages_offer_binder_with_jupyterlab():
    page = (HTML / "notebooks" / "open-close.html").read_text()
    links = re.findall(r'href="(https://mybinder\.org/v2/gh/[^"]+)"', page)
    assert links, "no Binder launch button"
    assert "urlpath=lab/tree/notebooks/open-close.ipynb" in links[0].replace("%2F", "/")


def test_repository_and_issue_buttons():
    page = (HTML / "book" / "intro.html").read_text()
    assert "https://github.com/why-tcp-waits/why-tcp-waits" in page
    assert "issues/new" in page


def test_no_notebook_output_is_an_error():
    for page in pages():
        text = page.read_text()
        assert "Traceback (most recent call last)" not in text, page


# ---------------------------------------------------------------- served from the site itself

# Bytes a page may load of its own assets, uncompressed; a page with widget snapshots, whose
# widget manager (embed.js) is 1.9 MB by itself, compressed as served (gzip). This counts what
# the HTML names; test_browser.py weighs what the browser loads (MathJax's components, fonts).
PAGE_BUDGET = 2_000_000


class _Assets(HTMLParser):
    """What a page makes the browser fetch at once: scripts, stylesheets, preloads, images."""

    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script" and a.get("src"):
            self.urls.append(a["src"])
        elif (
            tag == "link"
            and a.get("href")
            and {"stylesheet", "preload", "modulepreload", "icon"} & set((a.get("rel") or "").split())
        ):
            self.urls.append(a["href"])
        elif tag == "img" and a.get("src") and not a["src"].startswith("data:"):
            self.urls.append(a["src"])


def assets(page: Path) -> list:
    parser = _Assets()
    parser.feed(page.read_text())
    return parser.urls


def local_file(page: Path, url: str) -> Path:
    return (page.parent / url.split("?")[0].split("#")[0]).resolve()


def notebook_pages():
    return sorted((HTML / "notebooks").glob("*.html"))


def test_no_page_loads_anything_from_another_host():
    for page in pages() + sorted((HTML / "lite").rglob("*.html")):
        for url in assets(page):
            assert not re.match(r"(https?:)?//", url), f"{page.relative_to(HTML)} loads {url}"
            assert local_file(page, url).is_file(), f"{page.relative_to(HTML)}: {url} is missing"


def test_widget_snapshots_use_the_vendored_bundle():
    with_widgets = [p for p in pages() if "application/vnd.jupyter.widget-state+json" in p.read_text()]
    assert with_widgets, "no page stores widget state"
    for page in with_widgets:
        scripts = [u.split("?")[0] for u in assets(page)]
        assert any(u.endswith("_static/" + site_assets.WIDGETS_JS.split("_static/")[1]) for u in scripts), (
            page
        )
        assert not any("require" in u or "embed-amd" in u for u in scripts), page
    # Pages without widgets do not pay for the bundle.
    for page in set(pages()) - set(with_widgets):
        assert not any("html-manager" in u for u in assets(page)), page


def _config():
    import yaml

    return yaml.safe_load((ROOT / "_config.yml").read_text())


def test_mathjax_is_served_by_the_site():
    with_math = [p for p in pages() if "mathjax" in " ".join(assets(p)).lower()]
    assert with_math, "no page loads MathJax"
    for page in with_math:
        urls = [u for u in assets(page) if "mathjax" in u.lower()]
        assert [u.split("?")[0].split("_static/")[-1] for u in urls] == [
            site_assets.MATHJAX_JS.split("_static/")[-1]
        ], urls
    # MathJax's loader takes the components _config.yml names, and its fonts, from beside it.
    es5 = HTML / site_assets.MATHJAX_JS.rsplit("/", 1)[0]
    components = _config()["sphinx"]["config"]["mathjax3_config"]["loader"]["load"]
    for name in ["core", "output/chtml/fonts/tex"] + components:
        assert (es5 / f"{name}.js").is_file(), name
    assert sorted((es5 / "output/chtml/fonts/woff-v2").glob("*.woff"))


def _has_math(page: Path) -> bool:
    return re.search(r'class="math[ "]', page.read_text()) is not None


def test_mathjax_only_on_pages_that_show_mathematics():
    with_math = [p for p in pages() if _has_math(p)]
    assert with_math, "no page shows mathematics"
    for page in pages():
        text = page.read_text()
        loads = any("mathjax" in u.lower() for u in assets(page))
        assert loads == _has_math(page), (page.relative_to(HTML), loads)
        assert ("window.MathJax" in text) == loads, page.relative_to(HTML)


def test_pages_with_math_and_widgets_give_the_widget_manager_its_mathjax_adapter():
    """embed.js calls MathJax 2's MathJax.Hub.Queue; course_site's adapter, before embed.js,
    gives the site's MathJax 3 one (tests/site/test_browser.py runs such a page)."""
    import course_site

    for page in pages():
        text = page.read_text()
        loads = [u.split("?")[0] for u in assets(page)]
        widgets = any(u.endswith(site_assets.WIDGETS_JS.split("_static/")[1]) for u in loads)
        mathjax = any("mathjax" in u.lower() for u in loads)
        has_adapter = course_site.MATHJAX2_QUEUE_JS in text
        assert has_adapter == (widgets and mathjax), page.relative_to(HTML)
        if has_adapter:
            assert text.index(course_site.MATHJAX2_QUEUE_JS) < text.index("html-manager/dist/embed.js")


def test_no_page_carries_thebe():
    """The site offers no live code (Binder and JupyterLite do): no Thebe configuration or
    script, which the build used to write twice into every page."""
    for page in pages():
        text = page.read_text()
        assert "THEBE_JS_URL" not in text and "thebe" not in " ".join(assets(page)), page


def test_theme_mode_has_a_default():
    """Without one, the theme's script logs "Got invalid theme mode" on a first visit."""
    mode = _config()["sphinx"]["config"]["html_context"]["default_mode"]
    assert mode in ("auto", "light", "dark")
    for page in pages():
        text = page.read_text()
        # The JupyterLite app is not a course page; the root index.html only redirects.
        if "lite" in page.relative_to(HTML).parts or 'http-equiv="Refresh"' in text:
            continue
        assert f'localStorage.getItem("mode") || "{mode}"' in text, page
        assert f'data-default-mode="{mode}"' in text, page


def test_icons_come_from_the_theme_stylesheet_not_the_font_awesome_script():
    for page in pages():
        assert not any("fontawesome" in u and u.split("?")[0].endswith(".js") for u in assets(page)), page
    css = (HTML / "_static/vendor/fontawesome/6.5.2/css/all.min.css").read_text()
    fonts = re.findall(r"url\(\.\./(webfonts/[^)]+\.woff2)\)", css)
    assert fonts and all((HTML / "_static/vendor/fontawesome/6.5.2" / f).is_file() for f in fonts), fonts
    intro_assets = assets(HTML / "book" / "intro.html")
    assert any(u.split("?")[0].endswith("fontawesome/6.5.2/css/all.min.css") for u in intro_assets)
    for icon in ("fa-github", "fa-rocket", "fa-lightbulb", "fa-download"):
        assert f".{icon}:before" in css, icon
    intro = (HTML / "book" / "intro.html").read_text()
    assert re.search(r'<i class="(fab|fa-brands) fa-github', intro)
    assert re.search(r"\.fab\{font-family:Font Awesome\\ 6 Brands\}", css)


def test_every_page_has_the_favicon():
    for page in pages():
        text = page.read_text()
        # The JupyterLite app is not a course page; the root index.html only redirects.
        if "lite" in page.relative_to(HTML).parts or 'http-equiv="Refresh"' in text:
            continue
        icon = re.search(r'<link rel="(?:shortcut )?icon" href="([^"]+)"', text)
        assert icon and local_file(page, icon.group(1)).is_file(), page


def test_search_page_loads_the_index():
    """Pages leave out Sphinx's search scripts (only search-as-you-type, which the site does
    not offer, uses them); search.html, where the search box leads, loads them."""
    search = assets(HTML / "search.html")
    assert any(u.endswith("searchindex.js") for u in search)
    assert any("searchtools.js" in u for u in search)
    assert not any("searchindex.js" in u for u in assets(HTML / "book" / "intro.html"))


def page_weight(page: Path) -> tuple:
    """(raw, gzip-compressed) bytes of the page and the assets it loads at once."""
    files = [page] + [local_file(page, u) for u in dict.fromkeys(assets(page))]
    raw = sum(f.stat().st_size for f in files)
    packed = sum(len(gzip.compress(f.read_bytes(), 6)) for f in files)
    return raw, packed


def test_no_page_loads_more_than_2_mb_of_its_own_assets():
    # Page weight as a browser transfers it: each file gzip-compressed, as GitHub Pages serves.
    weights = {p.relative_to(HTML).as_posix(): page_weight(p) for p in pages()}
    heaviest = max(weights.items(), key=lambda kv: kv[1][1])
    print(
        f"heaviest page: {heaviest[0]}: {heaviest[1][1] / 1e6:.2f} MB compressed, "
        f"{heaviest[1][0] / 1e6:.2f} MB uncompressed"
    )
    for name, (_raw, packed) in weights.items():
        assert packed <= PAGE_BUDGET, f"{name}: {packed / 1e6:.2f} MB compressed"


def pcap_links(page: Path) -> list:
    return re.findall(r'href="([^"]*_static/pcaps/[^"]+\.pcapng)"', page.read_text())


def test_each_experiment_page_offers_the_captures_of_its_recorded_runs():
    offered = 0
    for page in notebook_pages():
        notebook = ROOT / "notebooks" / (page.stem + ".ipynb")
        expected = [name for name, _, _ in site_assets.notebook_pcaps(notebook)]
        links = pcap_links(page)
        assert [Path(u).name for u in links] == expected, page.name
        if expected:
            assert "come from the recorded runs" in page.read_text(), page.name
        elif site_assets.notebook_runs(notebook):  # experiments that capture no segments
            assert "No captures: the experiments on this page" in page.read_text(), page.name
        offered += len(links)
    assert offered >= 10


def test_pcap_links_resolve_to_the_recorded_segments():
    from scapy.layers.inet import TCP
    from scapy.utils import rdpcap

    runs = {site_assets.pcap_name(e, p): r for e, p, r, _ in site_assets.recorded_runs()}
    checked = set()
    for page in notebook_pages():
        for url in pcap_links(page):
            path = local_file(page, url)
            assert path.is_file(), url
            if path.name in checked:
                continue
            trace = runs[path.name]["trace"]
            packets = rdpcap(str(path))
            got = [(p[TCP].sport, str(p[TCP].flags), p[TCP].seq, len(p[TCP].payload)) for p in packets]
            want = [
                (
                    s["sport"],
                    "".join(site_assets._SCAPY_FLAGS[f] for f in s["flags"].split("|")),
                    s["seq_abs"],
                    s["length"],
                )
                for s in trace
            ]
            assert got == want, path.name
            checked.add(path.name)
    assert checked


def test_every_notebook_page_offers_binder_and_only_simulations_offer_jupyterlite():
    lite_pages = 0
    for page in notebook_pages():
        text = page.read_text()
        notebook = ROOT / "notebooks" / (page.stem + ".ipynb")
        assert f"urlpath=lab/tree/notebooks/{notebook.name}" in text, page.name
        lite = re.findall(r'href="([^"]*lite/lab/index\.html\?path=([^"]+))"', text)
        if site_assets.is_simulation_only(notebook):
            lite_pages += 1
            assert lite and {p for _, p in lite} == {notebook.name}, page.name
            assert local_file(page, lite[0][0]).name == "index.html"
            assert local_file(page, lite[0][0]).is_file()
            assert (HTML / "lite" / "files" / notebook.name).is_file()
            assert "Pyodide has no sockets" in text
        else:
            assert not lite, page.name
    assert lite_pages >= 1


def test_jupyterlite_serves_the_course_library_and_the_widget_wheels():
    index = json.loads((HTML / "lite" / "pypi" / "all.json").read_text())
    assert {"timewait", "ipywidgets", "jupyterlab-widgets"} <= {k.replace("_", "-") for k in index}
    config = json.loads((HTML / "lite" / "jupyter-lite.json").read_text())["jupyter-config-data"]
    names = [e["name"] for e in config["federated_extensions"]]
    assert "@jupyterlite/pyodide-kernel-extension" in names
    assert "@jupyter-widgets/jupyterlab-manager" in names


def test_the_served_wheel_imports_the_model_and_widgets_without_sockets_or_scapy(tmp_path):
    (wheel,) = (HTML / "lite" / "pypi").glob("timewait-*-py3-none-any.whl")
    zipfile.ZipFile(wheel).extractall(tmp_path)
    # Modules Pyodide cannot provide are made unimportable; the wheel alone must do.
    probe = f"""
import sys
BLOCKED = ("scapy", "timewait.capture", "timewait.sandbox", "timewait.lab",
           "timewait.experiments", "timewait.faults", "timewait.observe", "timewait.doctor")
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.startswith(BLOCKED):
            raise ImportError("not in the browser: " + name)
sys.meta_path.insert(0, Block())
sys.path = [p for p in sys.path if "site-packages" in p or "lib/python" in p]
sys.path.insert(0, {str(tmp_path)!r})
import timewait.model, timewait.widgets
assert timewait.model.__file__.startswith({str(tmp_path)!r})
from timewait.model import simulate
print(simulate("lost-final-ack", time_wait_msl=0, seed=0).outcome)
print(timewait.widgets.sequence_explorer(seed=0).ok)
"""
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["peer-reset", "True"]


def test_search_index_covers_every_page():
    index = (HTML / "searchindex.js").read_text()
    data = json.loads(index[index.index("(") + 1 : index.rindex(")")])
    toc = (ROOT / "_toc.yml").read_text()
    for entry in re.findall(r"(?:root|file):\s*(\S+)", toc):
        assert entry in data["docnames"], entry
    assert "captur" in data["terms"]


PYODIDE_PROBE = """
import {{ loadPyodide }} from "{index}pyodide.mjs";
import {{ readFileSync }} from "node:fs";
const py = await loadPyodide({{ indexURL: "{index}" }});
py.FS.writeFile("/tmp/timewait.whl", readFileSync("{wheel}"));
console.log(py.runPython(`
import sys, zipfile
zipfile.ZipFile("/tmp/timewait.whl").extractall("/tmp/wheel")
sys.path.insert(0, "/tmp/wheel")
before = set(sys.modules)
from timewait.model import simulate
result = simulate("lost-final-ack", time_wait_msl=0, seed=0)
new = sorted(m for m in set(sys.modules) - before if m.startswith(("scapy", "socket", "timewait.")))
" ".join([sys.platform, result.outcome] + new)
`));
"""


@pytest.mark.skipif(not shutil.which("node"), reason="needs node to run Pyodide")
def test_the_served_wheel_runs_the_model_in_pyodide(tmp_path):
    """In the Pyodide that JupyterLite loads (from npm here; its packages, such as numpy, are
    not in the npm package, so only the numpy-free model is run)."""
    site_assets.unpack(site_assets.npm_tarball("pyodide"), tmp_path)
    (wheel,) = (HTML / "lite" / "pypi").glob("timewait-*-py3-none-any.whl")
    script = tmp_path / "probe.mjs"
    script.write_text(PYODIDE_PROBE.format(index=f"{tmp_path}/package/", wheel=wheel))
    out = subprocess.run(["node", str(script)], capture_output=True, text=True, timeout=180, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    words = out.stdout.split()
    assert words[:2] == ["emscripten", "peer-reset"], out.stdout
    loaded = words[2:]
    assert not any(
        m.startswith(("scapy", "socket", "timewait.capture", "timewait.sandbox", "timewait.experiments"))
        for m in loaded
    ), loaded
    assert "timewait.model.scenarios" in loaded


def test_each_panel_page_says_which_snapshot_is_which_panel_and_serves_the_runtime():
    """live-panels.js gets, on every page with a panel, the panel each snapshot is and what
    to fetch; the runtime and the byte-compiled packages are served by the site itself."""
    from timewait.webpage import PANELS

    panels_dir = HTML / "_static" / "vendor" / "panels"
    manifest = json.loads((panels_dir / "panels.json").read_text())
    # Python's memory with the library imported (restored by the page, see test_live_panels)
    # and the package files it did not import: those it did are not served again, but for a
    # browser that cannot restore the snapshot, which gets every package file.
    assert (panels_dir / manifest["snapshot"]).read_bytes()[:2] == b"\x1f\x8b"  # gzip
    rest = set(zipfile.ZipFile(panels_dir / manifest["rest"]).namelist())
    every = set(zipfile.ZipFile(panels_dir / manifest["fallback"]["bundle"]).namelist())
    imported = {"timewait/webpage.pyc", "ipywidgets/__init__.pyc", "comm/__init__.pyc"}
    assert imported <= every and not imported & rest
    assert {"timewait/doctor.pyc", "ipywidgets-8.1.9.dist-info/METADATA"} <= rest < every
    assert not any(n.endswith(".py") for n in every)  # compiled, as Pyodide ships packages
    assert (panels_dir / manifest["fallback"]["bundle"]).stat().st_size == manifest["fallback"]["bytes"]
    for f, size in manifest["bytes"].items():
        ours = f in (manifest["rest"], manifest["snapshot"])
        served = panels_dir if ours else HTML / "_static" / "vendor" / "pyodide"
        assert (served / f).stat().st_size == size, f
    seen = set()
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        expected = site_assets.notebook_panels(nb)
        if not expected:
            continue
        text = (HTML / "notebooks" / f"{nb.stem}.html").read_text()
        config = json.loads(re.search(r"window\.COURSE_PANELS = (\{.*?\});", text).group(1))
        assert config["bytes"] == sum(manifest["bytes"].values())
        for model_id, (call, kwargs) in expected.items():
            view = config["views"][model_id]
            live = call in PANELS and kwargs is not None
            assert ("static" not in view) == live, (nb.name, call)
            seen.add(live)
        assert "live-panels.js" in " ".join(assets(HTML / "notebooks" / f"{nb.stem}.html"))
    assert True in seen
