"""The built site as a reader's browser shows it: every page opened in headless Chromium.

The site (_build/html) is served from 127.0.0.1 and each page is opened in a fresh browser
context, with every request to another host refused, as on a machine without internet: a
page that needs a CDN shows here what it shows a reader offline. For each page the test
records console errors, failed requests, images, links, figures, widget snapshots and what
the page loads, then checks them below; it saves screenshots of key pages and the page
weight report in _build/site-test/.

Opening every page takes a while, so this module runs in `make test-site`, which sets
TIMEWAIT_SITE_BROWSER=1; other runs of `pytest tests` skip it. Without Chromium or
Playwright it skips, or fails when CI=true.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urljoin, urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
# The built site: _build/html, or the one TIMEWAIT_SITE (as for test_site.py) or
# TIMEWAIT_SITE_HTML names (a build made elsewhere).
HTML = Path(
    os.environ.get("TIMEWAIT_SITE_HTML") or os.environ.get("TIMEWAIT_SITE") or ROOT / "_build" / "html"
)
ARTIFACTS = ROOT / "_build" / "site-test"

_spec = importlib.util.spec_from_file_location("site_weight", ROOT / "scripts" / "site_weight.py")
site_weight = sys.modules.setdefault("site_weight", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(site_weight)

# Pages photographed for the record: the course's start, a chapter, a notebook with widget
# snapshots and a notebook with sequence diagrams.
KEY_PAGES = {
    "intro": "book/intro.html",
    "chapter": "book/reliable-termination.html",
    "notebook-with-widgets": "notebooks/why-2msl.html",
    "notebook-with-sequence-diagrams": "notebooks/open-close.html",
}
WIDGET_RENDER_TIMEOUT_MS = 15_000
LITE_START_TIMEOUT_MS = 180_000

pytestmark = [
    pytest.mark.timeout(1200),
    pytest.mark.skipif(
        os.environ.get("TIMEWAIT_SITE_BROWSER") != "1",
        reason="the browser test runs in `make test-site` (or set TIMEWAIT_SITE_BROWSER=1)",
    ),
]

COLLECT_JS = """() => {
  const loaded = i => i.complete && i.naturalWidth > 0;
  const views = [...document.querySelectorAll(
      'script[type="application/vnd.jupyter.widget-view+json"]')];
  return {
    images: [...document.images].map(i => ({src: (i.currentSrc || i.src).slice(0, 120),
                                            alt: i.getAttribute('alt'), loaded: loaded(i)})),
    // Icons the theme marks aria-hidden, or draws inside its buttons, are decoration; every
    // other SVG, drawn into the page or by a widget, is a picture and needs a name. (An SVG
    // nested in another is part of its picture.)
    svgs: [...document.querySelectorAll('svg')].filter(s =>
        !s.closest('[aria-hidden="true"], button') && !s.parentElement.closest('svg')).map(s =>
        (s.getAttribute('aria-label') || (s.querySelector(':scope > title') || {}).textContent
         || '').trim()),
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    ids: [...document.querySelectorAll('[id]')].map(e => e.id)
           .concat([...document.querySelectorAll('a[name]')].map(a => a.name)),
    widget_views: views.length,
    widgets_rendered: views.filter(v => {
      const p = v.previousElementSibling;
      return p && p.classList.contains('widget-subarea') && p.children.length > 0; }).length,
    widget_state: !!document.querySelector(
        'script[type="application/vnd.jupyter.widget-state+json"]'),
    // A figure is an inline SVG with its text (timewait.plots.FigureHTML) drawn at a size.
    figures_shown: [...document.querySelectorAll('figure.timewait-figure')].filter(f => {
      const s = f.querySelector('svg[role="img"]');
      return s && s.getBoundingClientRect().width > 0 && s.querySelector('text'); }).length,
    declares_icon: !!document.querySelector('link[rel~="icon"]'),
  };
}"""
WIDGETS_RENDERED_JS = """() => [...document.querySelectorAll(
    'script[type="application/vnd.jupyter.widget-view+json"]')].every(v => {
  const p = v.previousElementSibling;
  return p && p.classList.contains('widget-subarea') && p.children.length > 0; })"""


@dataclass
class Visit:
    page: str
    console_errors: list = field(default_factory=list)  # (text, url of the source)
    external: list = field(default_factory=list)  # URLs on other hosts it asked for
    broken: list = field(default_factory=list)  # same-site requests that failed
    facts: dict = field(
        default_factory=lambda: dict(  # what COLLECT_JS found
            images=[],
            svgs=[],
            links=[],
            ids=[],
            widget_views=0,
            widgets_rendered=0,
            widget_state=False,
            figures_shown=0,
            declares_icon=False,
        )
    )
    weight: object = None
    failure: str = ""  # why the page could not be opened


def _browser_missing(reason: str):
    message = f"cannot run the browser test: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _visit(browser, base: str, page_name: str, screenshot: Path | None = None) -> Visit:
    visit = Visit(page_name)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    # Offline, whatever the machine: a request to any other host is refused and recorded.
    context.route(
        re.compile(r"^(?!" + re.escape(base) + ").*"),
        lambda route: (visit.external.append(route.request.url), route.abort()),
    )
    page = context.new_page()
    page.on(
        "console",
        lambda m: m.type == "error" and visit.console_errors.append((m.text, m.location.get("url", ""))),
    )
    page.on("pageerror", lambda e: visit.console_errors.append((f"uncaught: {e}", "")))
    page.on(
        "requestfailed",
        lambda r: (
            r.url.startswith(base) and visit.broken.append((r.url[len(base) - 1 :], r.failure or "failed"))
        ),
    )
    page.on(
        "response",
        lambda r: (
            r.url.startswith(base)
            and r.status >= 400
            and visit.broken.append((r.url[len(base) - 1 :], f"HTTP {r.status}"))
        ),
    )
    try:
        page.goto(base + page_name, wait_until="load", timeout=60_000)
    except Exception as exc:  # a page that does not load: test_every_page_was_opened
        visit.failure = str(exc).splitlines()[0]
        context.close()
        return visit
    try:
        if page.evaluate(COLLECT_JS)["widget_views"]:
            try:
                page.wait_for_function(WIDGETS_RENDERED_JS, timeout=WIDGET_RENDER_TIMEOUT_MS)
            except Exception:  # reported by test_every_widget_snapshot_is_shown
                pass
        page.wait_for_timeout(300)
        visit.facts = page.evaluate(COLLECT_JS)
        visit.weight = site_weight.page_weight(page, base, page_name)
        if screenshot is not None:
            page.screenshot(path=str(screenshot), full_page=True)
    finally:
        context.close()
    return visit


@pytest.fixture(scope="module")
def site():
    """Every page visited once: {"visits": {page: Visit}, "base": URL, "browser": Browser}."""
    if not (HTML / "index.html").exists():
        pytest.fail(f"no built site in {HTML}: `make test-site` builds it", pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _browser_missing(f"the Python package playwright is missing; {site_weight.INSTALL_HINT}")
    if site_weight.find_chromium() is None:
        _browser_missing(f"no Chromium found; {site_weight.INSTALL_HINT}")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    shots = {page: ARTIFACTS / f"{name}.png" for name, page in KEY_PAGES.items()}
    visits = {}
    with site_weight.serve(HTML) as base, sync_playwright() as p:
        browser = site_weight.launch(p)
        try:
            for name in site_weight.site_pages(HTML):
                visits[name] = _visit(browser, base, name, shots.get(name))
            yield {"visits": visits, "base": base, "browser": browser}
        finally:
            browser.close()


def _fail_if(problems: list, what: str):
    if problems:
        shown = "\n  ".join(problems[:40])
        more = f"\n  ... and {len(problems) - 40} more" if len(problems) > 40 else ""
        pytest.fail(f"{what}:\n  {shown}{more}", pytrace=False)


def _grouped(pairs) -> list:
    """[(problem, page), ...] -> one line per problem naming the pages it occurs on."""
    pages = defaultdict(list)
    for problem, page in pairs:
        if page not in pages[problem]:
            pages[problem].append(page)
    return [
        f"{problem}  (on {len(ps)} page{'s' * (len(ps) > 1)}: {', '.join(ps[:4])}"
        f"{', ...' if len(ps) > 4 else ''})"
        for problem, ps in pages.items()
    ]


def test_every_page_was_opened(site):
    pages = site_weight.site_pages(HTML)
    assert len(site["visits"]) == len(pages) > 0
    _fail_if(
        [f"{v.page}: {v.failure}" for v in site["visits"].values() if v.failure], "pages that did not load"
    )
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    entries = re.findall(r"(?:root|file):\s*(\S+)", (ROOT / "_toc.yml").read_text())
    assert toc["root"] in entries
    missing = [f"{e}.html" for e in entries if f"{e}.html" not in site["visits"]]
    _fail_if(missing, "pages in _toc.yml that the built site lacks (is _build/html stale?)")


def test_pages_load_nothing_from_other_hosts(site):
    """A reader offline must get the whole page: scripts, styles, fonts, MathJax, widgets."""
    _fail_if(
        _grouped((f"needs {url}", v.page) for v in site["visits"].values() for url in v.external),
        "pages that need another host (a CDN); serve these from the site itself",
    )


def test_no_console_errors(site):
    pairs = []
    for v in site["visits"].values():
        for text, url in v.console_errors:
            # The browser's own request for /favicon.ico, on a site that declares no icon.
            if urlsplit(url).path == "/favicon.ico" and not v.facts.get("declares_icon"):
                continue
            # A refused request to another host: test_pages_load_nothing_from_other_hosts.
            if text.startswith("Failed to load resource") and not url.startswith(site["base"]):
                continue
            pairs.append((f"{text[:160]}" + (f"  [from {url[:100]}]" if url else ""), v.page))
    _fail_if(_grouped(pairs), "console errors")


# A page with mathematics and a widget snapshot whose text is TeX, put together as the build
# writes such a page (scripts/course_site.py): MathJax 3 from _config.yml, the widget state,
# the MathJax 2 adapter, then the widget manager. It loads the site's own _static files.
MATH_AND_WIDGETS_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>math and widgets</title>
<link rel="icon" href="data:,">
<script>window.MathJax = {mathjax_config}</script>
<script defer src="_static/{mathjax_path}"></script>
<script type="application/vnd.jupyter.widget-state+json">{state}</script>
<script>{adapter}</script>
<script src="{widgets_js}"></script>
</head><body>
<p>There are <span class="math notranslate nohighlight">\\(2^{{32}}\\)</span> sequence numbers.</p>
<div class="cell_output"><script type="application/vnd.jupyter.widget-view+json">
{{"model_id": "label", "version_major": 2, "version_minor": 0}}</script></div>
</body></html>
"""
LABEL_STATE = {
    "version_major": 2,
    "version_minor": 0,
    "state": {
        "layout": {
            "model_name": "LayoutModel",
            "model_module": "@jupyter-widgets/base",
            "model_module_version": "2.0.0",
            "state": {},
        },
        "style": {
            "model_name": "LabelStyleModel",
            "model_module": "@jupyter-widgets/controls",
            "model_module_version": "2.0.0",
            "state": {},
        },
        "label": {
            "model_name": "LabelModel",
            "model_module": "@jupyter-widgets/controls",
            "model_module_version": "2.0.0",
            "state": {
                "layout": "IPY_MODEL_layout",
                "style": "IPY_MODEL_style",
                "value": "wraps after \\(2^{32}/R\\) seconds",
            },
        },
    },
}


def test_a_page_with_math_and_widgets_typesets_both(site, tmp_path):
    """embed.js typesets widget text with MathJax 2's MathJax.Hub.Queue; the site serves
    MathJax 3. course_site's adapter must let both work on one page, with no console error."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import course_site
    import site_assets

    sphinx = yaml.safe_load((ROOT / "_config.yml").read_text())["sphinx"]["config"]
    mathjax_config = dict(sphinx.get("mathjax3_config") or {})
    mathjax_config["options"] = {"processHtmlClass": "tex2jax_process|mathjax_process|math"}
    (tmp_path / "_static").symlink_to(HTML / "_static", target_is_directory=True)
    (tmp_path / "page.html").write_text(
        MATH_AND_WIDGETS_PAGE.format(
            mathjax_config=json.dumps(mathjax_config),
            mathjax_path=sphinx["mathjax_path"],
            state=json.dumps(LABEL_STATE),
            adapter=course_site.MATHJAX2_QUEUE_JS,
            widgets_js=site_assets.WIDGETS_JS,
        )
    )
    context = site["browser"].new_context()
    errors = []
    page = context.new_page()
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    try:
        with site_weight.serve(tmp_path) as base:
            page.goto(base + "page.html", wait_until="load", timeout=60_000)
            page.wait_for_function(WIDGETS_RENDERED_JS, timeout=WIDGET_RENDER_TIMEOUT_MS)
            page.wait_for_function(
                "() => document.querySelector('.widget-label mjx-container')"
                " && document.querySelector('p mjx-container')",
                timeout=WIDGET_RENDER_TIMEOUT_MS,
            )
            label = page.inner_text(".widget-label")
    except Exception as exc:
        pytest.fail(f"the page did not draw its math and its widget: {exc}; errors: {errors}", pytrace=False)
    finally:
        context.close()
    assert not errors, errors
    assert "seconds" in label and "\\(" not in label


def test_no_broken_same_site_requests(site):
    _fail_if(
        _grouped(
            (f"{path}: {why}", v.page)
            for v in site["visits"].values()
            for path, why in v.broken
            if path != "/favicon.ico"
        ),
        "same-site files that failed to load",
    )


def test_every_image_loads_and_has_alt_text(site):
    broken, unlabelled = [], []
    for v in site["visits"].values():
        for img in v.facts["images"]:
            if not img["loaded"]:
                broken.append(f"{v.page}: {img['src']}")
            if not (img["alt"] or "").strip():
                unlabelled.append(f"{v.page}: <img src={img['src'][:70]!r}> has no alt text")
        for k, label in enumerate(v.facts["svgs"]):
            if not label:
                unlabelled.append(f"{v.page}: SVG image {k + 1} has no aria-label or <title>")
    _fail_if(broken, "images that did not load")
    _fail_if(unlabelled, "images without alt text")


def test_no_broken_internal_links(site):
    base = site["base"]
    ids = {page: set(v.facts["ids"]) for page, v in site["visits"].items()}
    problems = []
    for v in site["visits"].values():
        for href in sorted(set(v.facts["links"])):
            if not href.startswith(base):
                continue
            parts = urlsplit(href)
            target = unquote(parts.path.lstrip("/")) or "index.html"
            if target.endswith("/"):
                target += "index.html"
            if not (HTML / target).is_file():
                problems.append(f"{v.page}: link to missing {target}")
                continue
            fragment = unquote(parts.fragment)
            if fragment and target.endswith(".html"):
                known = ids.get(target)
                if known is None:
                    known = set(re.findall(r'(?:id|name)="([^"]+)"', (HTML / target).read_text()))
                    ids[target] = known
                if fragment not in known:
                    problems.append(f"{v.page}: link to {target}#{fragment}: no such anchor")
    _fail_if(problems, "broken internal links")


def _glued_figures(page: str) -> int:
    """How many figures a chapter pastes from its notebook (``{glue} fig-...``)."""
    source = ROOT / Path(page).with_suffix(".md")
    if not source.exists():
        return 0
    return len(re.findall(r"^[`:]{3,}\{glue(?::figure)?\}\s+fig-", source.read_text(), re.M))


def _notebook_outputs(page: str) -> tuple:
    """(figures, widget views) among the stored outputs of the page's notebook."""
    path = ROOT / Path(page).with_suffix(".ipynb")
    if not path.exists():
        return 0, 0
    figures = views = 0
    for cell in json.loads(path.read_text())["cells"]:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            figures += "".join(data.get("text/html", "")).count('class="timewait-figure"')
            views += "application/vnd.jupyter.widget-view+json" in data
    return figures, views


def test_every_figure_and_widget_snapshot_is_shown(site):
    problems = []
    for v in site["visits"].values():
        f = v.facts
        figures, views = _notebook_outputs(v.page)
        wanted = _glued_figures(v.page) or figures
        if f["figures_shown"] < wanted:
            problems.append(f"{v.page}: shows {f['figures_shown']} of its {wanted} figures")
        if f["widget_views"] < views:
            problems.append(
                f"{v.page}: {f['widget_views']} widget views on the page, {views} in its notebook"
            )
        if f["widget_views"]:
            if not f["widget_state"]:
                problems.append(f"{v.page}: widget views but no stored widget state")
            if f["widgets_rendered"] < f["widget_views"]:
                cause = [u for u in v.external if "widget" in u or "require" in u]
                why = f" (the widget manager did not load: {', '.join(cause)} refused)" if cause else ""
                problems.append(
                    f"{v.page}: {f['widgets_rendered']} of {f['widget_views']} widget snapshots rendered{why}"
                )
    _fail_if(problems, "figures or widget snapshots missing")


def test_search_finds_the_chapters(site):
    """The search page, opened with a query, lists results from the built index."""
    context = site["browser"].new_context()
    page = context.new_page()
    try:
        page.goto(site["base"] + "search.html?q=TIME_WAIT", wait_until="load", timeout=60_000)
        # Results are appended one page at a time; the summary line is written when done.
        page.wait_for_function(
            "() => /finished|found/i.test("
            "document.querySelector('#search-results .search-summary')?.innerText || '')",
            timeout=30_000,
        )
        found = page.locator("#search-results ul.search li a").evaluate_all(
            "links => links.map(a => a.getAttribute('href'))"
        )
    finally:
        context.close()
    chapters = [h for h in found if h.startswith("book/")]
    assert len(chapters) >= 5, f"search for TIME_WAIT found {found}"


def _repository():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    url = urlsplit(config["repository"]["url"])
    owner, repo = url.path.strip("/").split("/")[:2]
    return owner, repo, config["repository"].get("branch", "main")


def test_binder_links_are_well_formed(site):
    owner, repo, branch = _repository()
    problems, seen = [], 0
    for page, v in site["visits"].items():
        notebook = Path(page).with_suffix(".ipynb").as_posix()
        links = [h for h in v.facts["links"] if urlsplit(h).netloc == "mybinder.org"]
        if page.startswith("notebooks/") and not links:
            problems.append(f"{page}: no Binder link")
        for href in links:
            seen += 1
            u = urlsplit(href)
            urlpath = parse_qs(u.query).get("urlpath", [""])[0]
            if u.scheme != "https" or u.path.rstrip("/") != f"/v2/gh/{owner}/{repo}/{branch}":
                problems.append(f"{page}: Binder link not to /v2/gh/{owner}/{repo}/{branch}: {href}")
            if not urlpath.startswith("lab/tree/"):
                problems.append(f"{page}: Binder link does not open JupyterLab: {href}")
                continue
            target = urlpath[len("lab/tree/") :]
            if not (ROOT / target).is_file():
                problems.append(f"{page}: Binder link opens {target}, not in the repository")
            elif page.startswith("notebooks/") and target != notebook:
                problems.append(f"{page}: Binder link opens {target}, not {notebook}")
    assert seen or problems, "no Binder link on any page"
    _fail_if(problems, "Binder links")


def _simulation_only_notebooks() -> list:
    """Notebooks that use the model or widgets and no live experiment: the ones JupyterLite
    (Pyodide, which has no sockets or namespaces) can run."""
    live = re.compile(r"timewait\.(experiments|lab|sandbox|doctor|capture|observe)\b")
    out = []
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        code = "\n".join(
            "".join(c["source"]) for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"
        )
        if re.search(r"timewait\.(model|widgets)\b", code) and not live.search(code):
            out.append(f"notebooks/{nb.stem}.html")
    return out


def _lite_links(visit: Visit, base: str) -> list:
    return [
        h
        for h in visit.facts["links"]
        if h.startswith(base) and any("lite" in seg.lower() for seg in urlsplit(h).path.split("/"))
    ]


def _lite_root(path: str) -> str:
    segs = path.strip("/").split("/")
    k = next(i for i, s in enumerate(segs) if "lite" in s.lower())
    return "/".join(segs[: k + 1])


def test_jupyterlite_links_are_well_formed(site):
    base, visits = site["base"], site["visits"]
    wanted = _simulation_only_notebooks()
    simulation = [p for p in wanted if p in visits]
    problems = [
        f"{p}: simulation-only notebook with no page in the built site" for p in wanted if p not in visits
    ]
    if not wanted:
        problems.append(
            "no simulation-only notebook in notebooks/ (one using timewait.model "
            "or timewait.widgets and no live experiment), so no page can offer "
            "JupyterLite"
        )
    for page in simulation:
        if not _lite_links(visits[page], base):
            problems.append(f"{page}: simulation-only notebook without a JupyterLite link")
    for page, v in visits.items():
        for href in _lite_links(v, base):
            u = urlsplit(href)
            target = unquote(u.path.lstrip("/"))
            if target.endswith("/"):
                target += "index.html"
            nb = parse_qs(u.query).get("path", [""])[0]
            root = _lite_root(u.path)
            if not (HTML / target).is_file():
                problems.append(f"{page}: JupyterLite link to missing {target}")
            if not nb.endswith(".ipynb"):
                problems.append(f"{page}: JupyterLite link names no notebook (?path=...): {href}")
            elif not any((HTML / root / d / nb).is_file() for d in ("files", "")):
                problems.append(f"{page}: JupyterLite link opens {nb}, not in {root}/files/")
            elif page in simulation and Path(nb).stem != Path(page).stem:
                problems.append(f"{page}: JupyterLite link opens {nb}, not this page's notebook")
    _fail_if(problems, "JupyterLite links")


def _kernel_settings(root: Path) -> dict:
    """The Pyodide kernel's settings in the JupyterLite build's jupyter-lite.json."""
    config = json.loads((root / "jupyter-lite.json").read_text())["jupyter-config-data"]
    return config.get("litePluginSettings", {}).get("@jupyterlite/pyodide-kernel-extension:kernel", {})


def _first_lite_link(site) -> tuple:
    """(page, JupyterLite URL) of the first simulation-only notebook page that offers one."""
    base, visits = site["base"], site["visits"]
    links = [
        (page, h)
        for page in _simulation_only_notebooks()
        if page in visits
        for h in _lite_links(visits[page], base)
    ]
    if not links:
        pytest.fail(
            "no JupyterLite link on a simulation-only notebook page "
            "(see test_jupyterlite_links_are_well_formed)",
            pytrace=False,
        )
    return links[0]


def test_jupyterlite_opens_the_simulation_notebook_from_the_site(site):
    """The JupyterLite app and the notebook are served by the site itself: with every other
    host refused, the app starts and shows the notebook's cells. (Starting its Python kernel
    is the next test's subject.)"""
    base = site["base"]
    page, href = _first_lite_link(site)
    nb = json.loads((ROOT / "notebooks" / Path(page).with_suffix(".ipynb").name).read_text())
    title = "".join(nb["cells"][0]["source"]).splitlines()[0].lstrip("# ").strip()
    context = site["browser"].new_context(viewport={"width": 1280, "height": 900})
    refused, uncaught = [], []
    context.route(
        re.compile(r"^(?!" + re.escape(base) + ").*"),
        lambda route: (refused.append(route.request.url), route.abort()),
    )
    lite = context.new_page()
    lite.on("pageerror", lambda e: uncaught.append(str(e)))
    try:
        lite.goto(href, wait_until="load", timeout=60_000)
        lite.wait_for_selector(".jp-Notebook .jp-Cell", timeout=LITE_START_TIMEOUT_MS)
        heading = lite.locator(".jp-Notebook .jp-RenderedMarkdown h1").first
        heading.wait_for(timeout=LITE_START_TIMEOUT_MS)
        shown = lite.locator(".jp-Notebook .jp-Cell").count()
        shown_title = heading.inner_text()
        lite.screenshot(path=str(ARTIFACTS / "jupyterlite-notebook.png"))
    except Exception as exc:
        lite.screenshot(path=str(ARTIFACTS / "jupyterlite-notebook-failed.png"))
        pytest.fail(
            f"{href}: JupyterLite did not show the notebook: {exc}; refused: " + ", ".join(refused[:5]),
            pytrace=False,
        )
    finally:
        context.close()
    assert shown >= 1, f"{href}: no cell shown"
    assert title in shown_title, f"{href}: the first heading is {shown_title!r}, not {title!r}"
    assert not refused, f"JupyterLite asked other hosts for: {sorted(refused)[:5]}"
    assert not uncaught, f"{href}: uncaught errors: {uncaught[:3]}"


# Test-only: the app object on window (JupyterLite's exposeAppInBrowser option), to run the
# notebook and read its outputs through JupyterLab's own commands and model.
def _expose_app(route):
    response = route.fetch()
    config = response.json()
    config.setdefault("jupyter-config-data", {})["exposeAppInBrowser"] = True
    route.fulfill(response=response, body=json.dumps(config))


KERNEL_STARTED_JS = """async (ms) => {
  const panel = window.jupyterapp.shell.currentWidget;
  await panel.sessionContext.ready;
  const kernel = panel.sessionContext.session.kernel;
  const late = new Promise((_, no) => setTimeout(() => no(new Error('no kernel_info reply')), ms));
  await Promise.race([kernel.info, late]);
  return kernel.name;
}"""
ALL_RUN_JS = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const cells = panel.content.model.toJSON().cells.filter(c => c.cell_type === 'code');
  return cells.every(c => c.execution_count) && panel.sessionContext.session.kernel.status === 'idle';
}"""
# Run in the notebook's kernel once its cells have run: every sweep result it holds.
SWEEPS_PY = """import json
from timewait.model.sweeps import SweepResult
print(json.dumps({k: [v.name, v.fixed, v.rows] for k, v in globals().items() if isinstance(v, SweepResult)}))
"""
EXECUTE_JS = """async (code) => {
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  let out = '';
  const future = kernel.requestExecute({code});
  future.onIOPub = m => {
    if (m.header.msg_type === 'stream') out += m.content.text;
    if (m.header.msg_type === 'error') out += `error: ${m.content.ename}: ${m.content.evalue}`;
  };
  await future.done;
  return out;
}"""


def _texts(cell: dict) -> list:
    """A code cell's outputs as (type, stream text or HTML) pairs."""
    out = []
    for o in cell.get("outputs", []):
        text = o.get("text") or o.get("data", {}).get("text/html", "")
        out.append((o["output_type"], "".join(text) if isinstance(text, list) else text))
    return out


def _recomputed(name: str, fixed: dict, rows: list) -> list:
    """The rows of the sweep ``name`` computed here, in plain Python (as Pyodide, without
    numpy, runs it), over the grid and with the settings of ``rows`` and ``fixed``."""
    from timewait.model import sweeps

    def grid(key):
        return tuple(dict.fromkeys(r[key] for r in rows))

    common = dict(trials=rows[0]["trials"], backend="python", **fixed)
    if name == "reset":
        return sweeps.reset_sweep(grid("final_ack_loss"), time_wait_msl=grid("time_wait_msl"), **common).rows
    if name == "old-duplicate":
        return sweeps.old_duplicate_sweep(
            grid("time_wait_msl"), reconnect_delay=grid("reconnect_delay"), isn=grid("isn"), **common
        ).rows
    pytest.fail(f"the notebook holds a {name} sweep, which this test does not recompute", pytrace=False)


def test_a_jupyterlite_simulation_notebook_runs_offline(site):
    """With every other host refused, the simulation notebook's kernel starts on the Pyodide
    runtime and packages the site serves (byte-compiled for its Python, so that the browser
    imports IPython without compiling it), runs every cell without an error, prints what the
    stored (CPython) run printed, and holds sweep results equal to the model's here."""
    base = site["base"]
    page, href = _first_lite_link(site)
    lite_root = _lite_root(urlsplit(href).path)
    stored = json.loads((ROOT / "notebooks" / Path(page).with_suffix(".ipynb").name).read_text())
    settings = _kernel_settings(HTML / lite_root)
    # The runtime and the lock file the kernel is configured with, as the browser asks for them.
    pyodide_url = settings.get("pyodideUrl")
    lock_url = settings.get("loadPyodideOptions", {}).get("lockFileURL")
    assert pyodide_url and lock_url, (
        "JupyterLite's kernel has no runtime or lock file of its own (pyodideUrl, "
        f"loadPyodideOptions.lockFileURL: {settings}), so it loads Pyodide from its CDN"
    )
    runtime = urljoin(base + lite_root + "/", pyodide_url)
    lock = urljoin(base + lite_root + "/", lock_url)
    assert runtime.startswith(base) and lock.startswith(base), (
        f"JupyterLite's kernel loads Pyodide from {runtime} and its packages by {lock}, not from the site"
    )
    lock_file = HTML / lite_root / lock_url
    for package in json.loads(lock_file.read_text())["packages"].values():
        names = zipfile.ZipFile(lock_file.parent / package["file_name"]).namelist()
        sources = [n for n in names if n.endswith(".py")]
        assert any(n.endswith(".pyc") for n in names) and not sources, (
            f"{package['file_name']} in the kernel's lock is not byte-compiled "
            f"(sources: {sources[:3]}), so the browser compiles it as the kernel starts"
        )
    context = site["browser"].new_context(viewport={"width": 1280, "height": 900})
    refused, uncaught, fetched = [], [], []
    context.route(
        re.compile(r"^(?!" + re.escape(base) + ").*"),
        lambda route: (refused.append(route.request.url), route.abort()),
    )
    context.route(re.compile(re.escape(base) + r".*/jupyter-lite\.json(\?.*)?$"), _expose_app)
    context.on("request", lambda r: fetched.append(r.url.split("?")[0]))
    lite = context.new_page()
    lite.on("pageerror", lambda e: uncaught.append(str(e)))
    step = "open the app"
    try:
        lite.goto(href, wait_until="load", timeout=60_000)
        lite.wait_for_function(
            "() => window.jupyterapp?.shell.currentWidget?.sessionContext", timeout=LITE_START_TIMEOUT_MS
        )
        step = "start the kernel"
        lite.evaluate(KERNEL_STARTED_JS, LITE_START_TIMEOUT_MS)
        step = "run every cell"
        lite.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        lite.wait_for_function(ALL_RUN_JS, timeout=LITE_START_TIMEOUT_MS, polling=500)
        ran = lite.evaluate("() => window.jupyterapp.shell.currentWidget.content.model.toJSON()")
        step = "read the sweeps"
        held = lite.evaluate(EXECUTE_JS, SWEEPS_PY)
        lite.screenshot(path=str(ARTIFACTS / "jupyterlite.png"))
    except Exception as exc:
        lite.screenshot(path=str(ARTIFACTS / "jupyterlite-failed.png"))
        pytest.fail(
            f"{href}: could not {step}: {str(exc).splitlines()[0]}; "
            f"refused: {refused[:5]}; uncaught: {uncaught[:3]}",
            pytrace=False,
        )
    finally:
        context.close()
    assert not refused, f"JupyterLite asked other hosts for: {sorted(set(refused))[:5]}"
    assert not uncaught, f"{href}: uncaught errors: {uncaught[:3]}"
    runtime_dir = runtime.rsplit("/", 1)[0] + "/"
    for wanted in (runtime_dir + "pyodide.asm.wasm", runtime_dir + "python_stdlib.zip", lock):
        assert wanted in fetched, f"the kernel did not load {wanted} from the site"
    problems = []
    code = [c for c in ran["cells"] if c["cell_type"] == "code"]
    old = [c for c in stored["cells"] if c["cell_type"] == "code"]
    if len(code) != len(old):
        problems.append(f"JupyterLite shows {len(code)} code cells, the notebook has {len(old)}")
    for n, (cell, was) in enumerate(zip(code, old, strict=False), 1):
        errors = [o for o in cell.get("outputs", []) if o["output_type"] == "error"]
        if errors:
            problems.append(f"code cell {n}: {errors[0]['ename']}: {errors[0]['evalue']}")
        elif "nbval-ignore-output" not in was["metadata"].get("tags", []) and _texts(cell) != _texts(was):
            problems.append(f"code cell {n}: output differs from the stored run: {_texts(cell)!r:.300}")
    _fail_if(problems, "the simulation notebook in JupyterLite")
    sweeps = json.loads(held)
    assert sweeps, f"no sweep result in the notebook's kernel: {held[:300]}"
    for var, (name, fixed, rows) in sweeps.items():
        assert rows == _recomputed(name, fixed, rows), (
            f"{var}: the {name} sweep differs from the model's here"
        )


def test_page_weight_within_budget(site):
    weights = [v.weight for v in site["visits"].values() if v.weight is not None]
    text = site_weight.report(weights, site_weight.site_bytes(HTML))
    (ARTIFACTS / "page-weight.txt").write_text(text + "\n")
    print("\n" + text)
    # Every page is held to the limit by the bytes it transfers (gzip, as GitHub Pages serves).
    assert weights and any(w.widgets for w in weights) and any(not w.widgets for w in weights)
    over = [
        f"{w.page}: {w.total / 1e6:.2f} MB transferred ({w.decoded / 1e6:.2f} MB "
        "uncompressed); heaviest: "
        + ", ".join(
            f"{p} {t / 1e3:.0f} kB" for p, (t, _) in sorted(w.assets.items(), key=lambda a: -a[1][0])[:3]
        )
        for w in weights
        if w.over()
    ]
    _fail_if(over, f"pages over {site_weight.LIMIT_BYTES / 1e6:g} MB transferred")


def test_screenshots_of_key_pages_were_saved(site):
    missing = [
        f"{name} ({page})"
        for name, page in KEY_PAGES.items()
        if page not in site["visits"] or not (ARTIFACTS / f"{name}.png").is_file()
    ]
    _fail_if(missing, "key pages not photographed (not in the built site)")
