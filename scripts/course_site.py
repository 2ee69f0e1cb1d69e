"""Sphinx extension for the course site (loaded from _config.yml).

On each notebook page:

- a "Packet captures" section at the end links the pcap files of the recorded runs of the
  experiments the notebook calls (written into book/_static/pcaps by ``site_assets.py``);
  a missing file is a build warning, so a strict build fails; on a page whose experiments
  capture no segments, the section says so;
- a notebook that needs no sockets (``site_assets.is_simulation_only``) gets a JupyterLite
  button beside Binder in the launch menu, and two lines at the top saying what runs there.

On every page, MathJax is loaded only when the page itself shows mathematics (Sphinx loads
it on a page whose sub-pages have some, e.g. the course's start page), and a page that
loads both MathJax and the widget manager gets the small adapter the widget manager needs
(see ``MATHJAX2_QUEUE_JS``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import site_assets
import yaml
from docutils import nodes
from docutils.parsers.rst import Directive
from sphinx import addnodes
from sphinx.util import logging
from sphinx.util.osutil import relative_uri

logger = logging.getLogger(__name__)

# @jupyter-widgets/html-manager's embed.js typesets widget text with MathJax 2's API,
# ``MathJax.Hub.Queue(["Typeset", MathJax.Hub, element])``, whenever ``window.MathJax``
# exists; the site serves MathJax 3, which has no ``Hub``. On a page that loads both, this
# script comes before embed.js and gives MathJax 3 a ``Hub.Queue`` that typesets the element
# the MathJax 3 way. It does so on the window's load event, in a handler registered before
# the one in which embed.js draws the widgets: by then the deferred MathJax script has run
# and replaced its configuration object with itself. If MathJax failed to load, the widgets
# are drawn without typesetting.
MATHJAX2_QUEUE_JS = (
    'window.addEventListener("load", () => {'
    " const mj = window.MathJax;"
    " if (!mj || mj.Hub) return;"
    " mj.Hub = {Queue: job => {"
    " const element = job && job[2];"
    " if (!element || !(mj.startup && mj.startup.promise)) return;"
    " mj.startup.promise = mj.startup.promise.then(() => mj.typesetPromise([element]));"
    " }};"
    " });"
)


def _notebook(app, docname: str):
    path = Path(app.env.doc2path(docname))
    return path if path.suffix == ".ipynb" else None


def _lite_url(app) -> str:
    return app.config.course_lite_url.rstrip("/")


def _link(refuri: str, text: str) -> nodes.reference:
    return nodes.reference("", text, refuri=refuri, internal=False)


def _recordings() -> dict:
    out = {}
    for path in site_assets.RECORDINGS.glob("*.json"):
        data = json.loads(path.read_text())
        out[data["experiment"]] = (data["kernel"], data["date"])
    return out


def add_sections(app, doctree) -> None:
    docname = app.env.docname
    notebook = _notebook(app, docname)
    if notebook is None:
        return
    sections = [n for n in doctree.children if isinstance(n, nodes.section)]
    if not sections:
        return
    page = app.builder.get_target_uri(docname)

    if site_assets.is_simulation_only(notebook):
        url = relative_uri(page, f"{_lite_url(app)}/index.html") + f"?path={notebook.name}"
        para = nodes.paragraph()
        para += nodes.Text("Run this notebook in your browser, with no server: ")
        para += _link(url, "open it in JupyterLite")
        para += nodes.Text(
            ". Python runs in the page (Pyodide). The Pyodide runtime, the packages it runs, "
            "the course library and the notebook all come from this site (about 24 MB on "
            "first use)."
        )
        sockets = nodes.paragraph(
            text=(
                "The socket experiments of the other notebooks are not offered in JupyterLite: "
                "Pyodide has no sockets, so open those on Binder or on your own Linux machine."
            )
        )
        note = nodes.note("", para, sockets)
        note["classes"].append("course-jupyterlite")
        first = sections[0]
        title_at = next((i for i, c in enumerate(first.children) if isinstance(c, nodes.title)), -1)
        first.insert(title_at + 1, note)

    pcaps = site_assets.notebook_pcaps(notebook)
    experiments = sorted({e for e, _ in site_assets.notebook_runs(notebook)})
    if not (pcaps or experiments):
        return
    section = nodes.section(ids=["packet-captures"], names=["packet captures"])
    section["classes"].append("course-pcaps")
    section += nodes.title(text="Packet captures")
    if not pcaps:
        para = nodes.paragraph(text="No captures: the experiments on this page (")
        for i, name in enumerate(experiments):
            para += nodes.literal(text=name)
            para += nodes.Text(", " if i < len(experiments) - 1 else "")
        para += nodes.Text(
            ") watch socket states and the errors the calls return, not segments, so they record none."
        )
        section += para
        sections[-1].append(section)
        return
    recordings = _recordings()
    kernels = sorted({recordings[e] for _, e, _ in pcaps if e in recordings})
    when = "; ".join(f"{kernel}, {date}" for kernel, date in kernels)
    intro = nodes.paragraph(
        text=(
            "The captures of this page's experiments, as pcapng files for Wireshark or tcpdump. "
            f"They come from the recorded runs ({when}), the outcomes shown when a machine cannot "
            "run an experiment live, and are rebuilt from the recorded segments: addresses, ports, "
            "flags, sequence and acknowledgement numbers, timestamps and payload lengths as "
            "captured, windows and TCP options too where the recording keeps them (else a window "
            "of 8192 and the timestamps option alone). Payload bytes are not recorded: a "
            "printable stand-in of the same length takes their place. A segment "
            "the experiment dropped, held or delivered late carries a packet comment saying so. "
            "Your own run writes its capture, as it was, with "
        )
    )
    intro += nodes.literal(text="timewait experiment NAME --pcap FILE")
    intro += nodes.Text(".")
    section += intro
    items = nodes.bullet_list()
    for name, experiment, params in pcaps:
        if not (site_assets.PCAPS / name).exists():
            logger.warning(f"pcap {name} is missing: run `python scripts/site_assets.py`", location=docname)
            continue
        opts = ", ".join(f"{k}={v}" for k, v in params.items())
        para = nodes.paragraph()
        para += _link(relative_uri(page, f"_static/pcaps/{name}"), f"{experiment} ({opts})")
        items += nodes.list_item("", para)
    section += items
    sections[-1].append(section)


def add_lite_button(app, pagename, templatename, context, doctree) -> None:
    if doctree is None or not pagename.startswith("notebooks/"):
        return
    notebook = _notebook(app, pagename)
    if notebook is None or not site_assets.is_simulation_only(notebook):
        return
    for group in context.get("header_buttons", []):
        if group.get("label") == "launch-buttons":
            url = context["pathto"](f"{_lite_url(app)}/index.html", 1) + f"?path={notebook.name}"
            group["buttons"].append(
                {
                    "type": "link",
                    "text": "JupyterLite",
                    "tooltip": "Run in the browser with JupyterLite",
                    "icon": "fa-solid fa-laptop-code",
                    "url": url,
                }
            )


def _has_math(doctree) -> bool:
    return (
        doctree is not None
        and doctree.next_node(lambda n: isinstance(n, (nodes.math, nodes.math_block))) is not None
    )


def scope_mathjax(app, pagename, templatename, context, doctree) -> None:
    """MathJax only on pages that show mathematics; the MathJax 2 adapter where the widget
    manager runs beside MathJax."""
    scripts = list(context.get("script_files", []))
    mathjax_js = f"_static/{app.config.mathjax_path}"

    def is_mathjax(js) -> bool:
        return str(js.filename or "") == mathjax_js or (
            not js.filename and js.attributes.get("body", "").startswith("window.MathJax")
        )

    if not _has_math(doctree):
        scripts = [js for js in scripts if not is_mathjax(js)]
    widgets_js = [i for i, js in enumerate(scripts) if str(js.filename or "") == site_assets.WIDGETS_JS]
    if widgets_js and any(is_mathjax(js) for js in scripts):
        widgets = scripts[widgets_js[0]]
        adapter = type(widgets)("", priority=widgets.priority, body=MATHJAX2_QUEUE_JS)
        scripts.insert(widgets_js[0], adapter)
    context["script_files"] = scripts


def add_live_panels(app, pagename, templatename, context, doctree) -> None:
    """On a notebook page with widget panels, tell live-panels.js which snapshot is which
    panel (``window.COURSE_PANELS``), where the runtime and wheels are, and where else the
    notebook runs (JupyterLite, Binder)."""
    notebook = _notebook(app, pagename) if doctree is not None else None
    panels = site_assets.notebook_panels(notebook) if notebook else {}
    if not panels:
        return
    from timewait.webpage import NOT_IN_PAGE, PANELS

    views = {}
    for model_id, (call, kwargs) in panels.items():
        if call in PANELS and kwargs is not None:
            views[model_id] = {"call": call, "kwargs": kwargs}
        else:
            views[model_id] = {
                "call": call,
                "static": NOT_IN_PAGE.get(call, "its settings are computed in the notebook"),
            }
    manifest = json.loads((site_assets.STATIC / "vendor" / "panels" / "panels.json").read_text())
    binder = next(
        (
            b.get("url")
            for g in context.get("header_buttons", [])
            if g.get("label") == "launch-buttons"
            for b in g.get("buttons", [])
            if "binder" in str(b.get("url", ""))
        ),
        None,
    )
    lite = None
    if site_assets.is_simulation_only(notebook):
        lite = context["pathto"](f"{_lite_url(app)}/index.html", 1) + f"?path={notebook.name}"
    config = {
        "views": views,
        "bytes": sum(manifest["bytes"].values()),
        "pyodide": context["pathto"]("_static/vendor/pyodide/", 1),
        "panels": context["pathto"]("_static/vendor/panels/", 1),
        "lite": lite,
        "binder": binder,
    }
    scripts = list(context.get("script_files", []))
    js_type = type(scripts[0])
    body = "window.COURSE_PANELS = " + json.dumps(config).replace("</", "<\\/") + ";"
    scripts += [js_type("", body=body), js_type("_static/live-panels.js")]
    context["script_files"] = scripts


WORDS_PER_MINUTE = 200


def _reading_minutes(path: Path) -> int:
    """Minutes to read a chapter's prose at WORDS_PER_MINUTE (code blocks left out)."""
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return max(1, round(len(re.findall(r"[A-Za-z0-9_'’-]+", text)) / WORDS_PER_MINUTE))


class CourseChapters(Directive):
    """The course's chapters in their order (``_toc.yml``), each linked, with the minutes its
    prose takes to read, counted from the chapter as it is built."""

    def run(self):
        env = self.state.document.settings.env
        toc = yaml.safe_load((Path(env.srcdir) / "_toc.yml").read_text())
        items = nodes.enumerated_list()
        for part in toc.get("parts", []):
            for chapter in part.get("chapters", []):
                docname = chapter["file"]
                source = Path(env.srcdir) / f"{docname}.md"
                if not docname.startswith("book/") or not source.exists():
                    continue
                env.note_dependency(str(source))
                para = nodes.paragraph()
                para += addnodes.pending_xref(
                    "",
                    nodes.inline(text=docname),
                    refdomain="std",
                    reftype="doc",
                    reftarget="/" + docname,
                    refexplicit=False,
                    refwarn=True,
                )
                para += nodes.Text(
                    f" ({part['caption']}): about {_reading_minutes(source)} min to read, then its notebook"
                )
                items += nodes.list_item("", para)
        return [items]


def setup(app):
    app.add_directive("course-chapters", CourseChapters)
    # Where build_lite.py puts the JupyterLite site, relative to the site root.
    app.add_config_value("course_lite_url", "lite/lab", "html")
    # Before the table-of-contents collector reads the page, so the section is listed.
    app.connect("doctree-read", add_sections, priority=400)
    # After sphinx-book-theme has built the launch menu (priority 501).
    app.connect("html-page-context", add_lite_button, priority=600)
    # After Sphinx's MathJax and myst-nb's widget scripts are added (priority 500).
    app.connect("html-page-context", scope_mathjax, priority=600)
    app.connect("html-page-context", add_live_panels, priority=610)
    # The frame of every page: scroll cues and print rules for wide outputs, panel bars.
    app.add_css_file("course.css")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
