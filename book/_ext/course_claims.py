"""Claims and their evidence: a Sphinx extension and the check that ``make test`` runs.

A chapter marks a statement about Linux behaviour (a default, a limit, a number) as a claim
with the ``claim`` role, right after the statement::

    The timer is re-armed to 60 s.{claim}`live:tw-rearmed-by-fin`
    The state is defined in RFC 9293.{claim}`cited:rfc9293-time-wait <https://www.rfc-editor.org/rfc/rfc9293#section-3.6>`

The part before the colon is the kind of evidence, exactly one of

- ``live``: a code cell of a notebook, tagged ``claim:ID``, runs an experiment and asserts
  the claim on the reader's kernel;
- ``model``: a code cell, tagged ``claim:ID``, asserts it from a simulation of the model;
- ``cited``: a source the reader can open, given as a URL: an RFC, a kernel source file at a
  named version, a man page.

On the site the role is a small marker ("live", "model", "cited") linking to the cell or the
source; the tagged cell gets an anchor and a line linking back to the chapter. The
``claim-inventory`` directive lists every claim. Run as a script (``python
book/_ext/course_claims.py``), the module checks every chapter and notebook and prints the
counts; ``tests/test_claims.py`` runs the same check.

What the check requires:

- every claim has a kind and an id, and the id is used once;
- a live or model claim has exactly one tagged cell, and that cell holds an ``assert`` whose
  test uses a value computed by an experiment (live: a call of something imported from
  ``timewait.experiments`` or ``timewait.lab``) or by the model (``timewait.model``), directly
  or through names assigned from it; an assert of a constant does not count;
- a cited claim's URL is one a reader can open at a fixed version (see ``CITABLE``);
- every ``claim:`` tag belongs to a claim of some chapter;
- no bare claims: in a chapter that marks claims, a sentence that states what Linux (or the
  kernel) does, or gives a sysctl's value, carries a claim marker in its paragraph (see
  ``bare_claims``).
"""

from __future__ import annotations

import ast
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KINDS = ("live", "model", "cited")
TAG_PREFIX = "claim:"
ROLE_RE = re.compile(r"\{claim\}`(?P<kind>[a-z]*):?(?P<id>[a-z0-9][a-z0-9-]*)?(?:\s*<(?P<target>[^>]*)>)?`")
# Sources a reader can open at a fixed version.
CITABLE = (
    re.compile(r"^https://www\.rfc-editor\.org/rfc/rfc\d+(\.html)?(#[\w.-]+)?$"),
    re.compile(r"^https://datatracker\.ietf\.org/doc/html/rfc\d+(#[\w.-]+)?$"),
    # kernel source at a tagged version
    re.compile(r"^https://elixir\.bootlin\.com/linux/v\d+\.\d+(\.\d+)?/source/\S+$"),
    re.compile(
        r"^https://git\.kernel\.org/pub/scm/linux/kernel/git/torvalds/linux\.git/tree/\S+"
        r"\?h=v\d+\.\d+\S*$"
    ),
    # a commit: the change itself, at a fixed version
    re.compile(
        r"^https://git\.kernel\.org/pub/scm/linux/kernel/git/torvalds/linux\.git/commit/"
        r"\?id=[0-9a-f]{12,40}$"
    ),
    re.compile(r"^https://man7\.org/linux/man-pages/man\d/[\w.-]+\.html(#\S+)?$"),
    re.compile(r"^https://docs\.kernel\.org/\S+$"),
)
LIVE_MODULES = ("timewait.experiments", "timewait.lab")
MODEL_MODULES = ("timewait.model",)


@dataclass(frozen=True)
class Claim:
    id: str
    kind: str
    chapter: str  # file stem
    line: int
    target: str = ""  # the URL of a cited claim


@dataclass(frozen=True)
class Cell:
    notebook: str  # file stem
    index: int  # position in the notebook's cells
    source: str
    tags: tuple


@dataclass
class Report:
    claims: list = field(default_factory=list)
    cells: dict = field(default_factory=dict)  # claim id -> Cell
    errors: list = field(default_factory=list)

    def counts(self) -> dict:
        return {kind: sum(c.kind == kind for c in self.claims) for kind in KINDS}

    def summary(self) -> str:
        n = self.counts()
        total = sum(n.values())
        kernel = n["live"] + n["cited"]  # claims about Linux itself: shown live or cited
        live_share = f"{100 * n['live'] / kernel:.0f} %" if kernel else "-"
        return (
            f"claims: {total} ({n['live']} live, {n['model']} model, {n['cited']} cited; "
            f"of the claims about the kernel, {live_share} live)"
        )


# --- reading chapters ---------------------------------------------------------------------


def _strip_code(text: str) -> str:
    """The text with fenced code blocks blanked (line numbers kept)."""
    out, fences = [], []  # open fences: (marker, is_code)
    for line in text.splitlines():
        s = line.strip()
        m = re.match(r"^(`{3,}|~{3,})(.*)$", s)
        if m and fences and m.group(2).strip() == "" and m.group(1) == fences[-1][0]:
            fences.pop()  # a closing fence
            out.append("")
            continue
        if m and not (fences and fences[-1][1]):
            # a directive's body ({glue}, {admonition}) is kept, a code block's is blanked
            directive = m.group(2).startswith("{")
            code = not directive or m.group(2).startswith(("{code", "{math", "{glue"))
            fences.append((m.group(1), code))
            out.append("")
            continue
        out.append("" if fences and fences[-1][1] else line)
    return "\n".join(out)


def chapter_claims(text: str, chapter: str) -> tuple[list, list]:
    """The claims marked in a chapter's text, and the errors in their markers."""
    claims, errors = [], []
    for n, line in enumerate(_strip_code(text).splitlines(), 1):
        for m in ROLE_RE.finditer(line):
            where = f"{chapter}.md:{n}"
            kind, cid, target = m.group("kind"), m.group("id"), (m.group("target") or "").strip()
            if kind not in KINDS or not cid:
                errors.append(f"{where}: a claim needs a kind ({', '.join(KINDS)}) and an id: {m.group(0)}")
                continue
            if kind == "cited" and not any(p.match(target) for p in CITABLE):
                errors.append(
                    f"{where}: cited claim {cid} needs a source a reader can open at a "
                    f"fixed version (RFC, kernel source at vX.Y, man page), "
                    f"not {target!r}"
                )
            if kind != "cited" and target:
                errors.append(
                    f"{where}: {kind} claim {cid} takes its evidence from the cell "
                    f"tagged {TAG_PREFIX}{cid}, not from a link"
                )
            claims.append(Claim(cid, kind, chapter, n, target))
    return claims, errors


# A sentence that states what Linux or the kernel does, or a tunable's value.
_BEHAVIOUR = re.compile(
    r"\b(Linux|the kernel|[Ii]ts kernel|the timer)\b[^.;:]*?\b("
    r"sends?|keeps?|answers?|drops?|refuses?|accepts?|re-?arms?|waits?|gives?|picks?|uses?|"
    r"retransmits?|resets?|closes?|holds?|counts?|fails?|returns?|chooses?|delays?|"
    r"moves?|kills?|frees?|lets?|allows?|takes?|hands?|is|are|has|does(?:n't| not)?|never|"
    r"always|only)\b"
    r"|\b(net\.ipv4\.)?tcp_[a-z0-9_]+\b[^.;]*?\b(defaults? to|is \d|=\s*\d|by default)"
)


def _paragraphs(text: str):
    """(first line number, paragraph text) of the prose: no code, headings, directives'
    option lines, exercises' questions or answers, or HTML comments."""
    lines = _strip_code(text).splitlines()
    para, start, skip = [], 0, 0
    for n, line in enumerate(lines + [""], 1):
        s = line.strip()
        if s.startswith(":::"):
            # exercises and their answers are questions to the reader, not the course's claims
            skip = skip + 1 if s.startswith(":::{") else max(0, skip - 1)
            if para:
                yield start, " ".join(para)
            para = []
            continue
        if not s or s.startswith(("#", ":", "<!--", "|")):
            if para:
                yield start, " ".join(para)
            para = []
            continue
        if skip:
            continue
        if not para:
            start = n
        para.append(s)


def bare_claims(text: str, chapter: str) -> list:
    """Sentences stating Linux behaviour in a paragraph that carries no claim marker."""
    found = []
    for start, para in _paragraphs(text):
        if ROLE_RE.search(para) or "{glue}" in para:
            continue
        body = re.sub(r"\{footcite:p\}`[^`]*`|`[^`]*`", "X", para)
        for sentence in re.split(r"(?<=[.!?])\s+", body):
            if _BEHAVIOUR.search(sentence):
                found.append(f"{chapter}.md:{start}: bare claim: {sentence[:110]}")
                break
    return found


# --- reading notebooks --------------------------------------------------------------------


def notebook_cells(nb: dict, stem: str) -> list:
    cells = []
    for i, cell in enumerate(nb["cells"]):
        tags = tuple(cell.get("metadata", {}).get("tags", []))
        if cell["cell_type"] == "code":
            cells.append(Cell(stem, i, "".join(cell["source"]), tags))
        elif any(t.startswith(TAG_PREFIX) for t in tags):
            cells.append(Cell(stem, i, "", tags))  # a tagged markdown cell is an error
    return cells


def _imported(tree: ast.AST, modules: tuple) -> set:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(modules):
            names |= {a.asname or a.name for a in node.names}
        elif isinstance(node, ast.Import):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names if a.name.startswith(modules)}
    return names


def _names(node: ast.AST) -> set:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _targets(node: ast.AST) -> set:
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return set().union(*(_names(t) for t in targets))
    if isinstance(node, (ast.For, ast.comprehension)):
        return _names(node.target)
    if isinstance(node, ast.NamedExpr):
        return {node.target.id}
    if isinstance(node, (ast.With,)):
        return set().union(*(_names(i.optional_vars) for i in node.items if i.optional_vars))
    return set()


def _value(node: ast.AST):
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.NamedExpr)):
        return node.value
    if isinstance(node, ast.For):
        return node.iter
    if isinstance(node, ast.comprehension):
        return node.iter
    if isinstance(node, ast.With):
        return node.items[0].context_expr
    return None


def derived_names(sources: list, modules: tuple) -> set:
    """Names that hold values computed by functions imported from ``modules``, directly or
    through assignments, loops and ``with`` blocks, over the notebook's cells in order."""
    trees = []
    for src in sources:
        try:
            trees.append(ast.parse(src))
        except SyntaxError:
            continue
    roots = set().union(*(_imported(t, modules) for t in trees)) if trees else set()
    derived = set(roots)
    for _ in range(3):  # names defined in a loop body before their source: a few passes
        for tree in trees:
            for node in ast.walk(tree):
                value = _value(node)
                if value is not None and _names(value) & derived:
                    derived |= _targets(node)
                # rows.append(result), seen.update(...): the container holds results too
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name)
                    and any(_names(arg) & derived for arg in node.args)
                ):
                    derived.add(node.func.value.id)
    return derived


def asserts_on(source: str, names: set) -> bool:
    """Whether the cell holds an assert, not of a constant, whose test uses one of ``names``."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert) and not isinstance(node.test, ast.Constant):
            if _names(node.test) & names:
                return True
    return False


# --- the check ----------------------------------------------------------------------------


def check(root: Path = ROOT) -> Report:
    book, notebooks = root / "book", root / "notebooks"
    report = Report()
    for md in sorted(book.glob("*.md")):
        text = md.read_text()
        claims, errors = chapter_claims(text, md.stem)
        report.claims += claims
        report.errors += errors
        if claims:
            report.errors += bare_claims(text, md.stem)
    seen = {}
    for c in report.claims:
        if c.id in seen:
            report.errors.append(f"{c.chapter}.md:{c.line}: claim id {c.id} is already used at {seen[c.id]}")
        seen.setdefault(c.id, f"{c.chapter}.md:{c.line}")
    tagged, live_names, model_names = {}, {}, {}
    for path in sorted(notebooks.glob("*.ipynb")):
        nb = json.loads(path.read_text())
        cells = notebook_cells(nb, path.stem)
        sources = [c.source for c in cells]
        live_names[path.stem] = derived_names(sources, LIVE_MODULES)
        model_names[path.stem] = derived_names(sources, MODEL_MODULES)
        for cell in cells:
            for tag in cell.tags:
                if tag.startswith(TAG_PREFIX):
                    tagged.setdefault(tag[len(TAG_PREFIX) :], []).append(cell)
    claims = {c.id: c for c in report.claims}
    for cid, cells in sorted(tagged.items()):
        where = ", ".join(f"{c.notebook}.ipynb cell {c.index}" for c in cells)
        if cid not in claims:
            report.errors.append(f"{where}: tag {TAG_PREFIX}{cid} belongs to no claim")
        elif claims[cid].kind == "cited":
            report.errors.append(f"{where}: claim {cid} is cited, yet a cell is tagged for it")
        elif len(cells) > 1:
            report.errors.append(f"{where}: claim {cid} is tagged on more than one cell")
    for c in report.claims:
        if c.kind == "cited":
            continue
        where = f"{c.chapter}.md:{c.line}"
        cells = tagged.get(c.id, [])
        if not cells:
            report.errors.append(f"{where}: {c.kind} claim {c.id} has no cell tagged {TAG_PREFIX}{c.id}")
            continue
        cell = cells[0]
        report.cells[c.id] = cell
        names = (live_names if c.kind == "live" else model_names)[cell.notebook]
        if not asserts_on(cell.source, names):
            origin = " or ".join(LIVE_MODULES if c.kind == "live" else MODEL_MODULES)
            report.errors.append(
                f"{where}: the cell tagged {TAG_PREFIX}{c.id} ({cell.notebook}.ipynb cell "
                f"{cell.index}) holds no assert on a result computed by {origin}"
            )
    return report


# --- the Sphinx extension -----------------------------------------------------------------


def setup(app):
    from docutils import nodes
    from docutils.parsers.rst import Directive
    from sphinx.util import logging
    from sphinx.util.docutils import SphinxRole

    logger = logging.getLogger(__name__)
    labels = {"live": "live", "model": "model", "cited": "cited"}
    titles = {
        "live": "Shown live: the notebook cell that asserts this on a real kernel",
        "model": "Shown by the model: the notebook cell that asserts this from a simulation",
        "cited": "Cited: the source that says so",
    }

    def state(env) -> Report:
        if not hasattr(env, "_course_claims"):
            env._course_claims = check(Path(env.srcdir))
        return env._course_claims

    class ClaimRole(SphinxRole):
        def run(self):
            m = ROLE_RE.fullmatch(f"{{claim}}`{self.text}`")
            kind, cid = (m.group("kind"), m.group("id")) if m else ("", "")
            if kind not in KINDS or not cid:
                logger.warning(
                    f"claim {self.text!r}: needs a kind ({', '.join(KINDS)}) and an id",
                    location=self.get_location(),
                )
                return [], []
            if kind == "cited":
                uri = (m.group("target") or "").strip()
            else:
                cell = state(self.env).cells.get(cid)
                if cell is None:
                    logger.warning(
                        f"{kind} claim {cid}: no notebook cell is tagged {TAG_PREFIX}{cid}",
                        location=self.get_location(),
                    )
                    return [], []
                uri = (
                    self.env.app.builder.get_relative_uri(self.env.docname, f"notebooks/{cell.notebook}")
                    + f"#claim-{cid}"
                )
            ref = nodes.reference(
                "",
                labels[kind],
                refuri=uri,
                internal=kind != "cited",
                classes=["course-claim", f"course-claim-{kind}"],
                reftitle=titles[kind],
            )
            target = nodes.inline("", "", ids=[f"claim-at-{cid}"])
            return [target, nodes.Text("\u2009"), ref], []

    class ClaimInventory(Directive):
        def run(self):
            env = self.state.document.settings.env
            report = state(env)
            table = nodes.table(classes=["course-claim-inventory"])
            group = nodes.tgroup(cols=4)
            table += group
            for width in (30, 10, 20, 40):
                group += nodes.colspec(colwidth=width)
            head = nodes.thead()
            group += head
            row = nodes.row()
            for title in ("claim", "kind", "chapter", "evidence"):
                row += nodes.entry("", nodes.paragraph(text=title))
            head += row
            body = nodes.tbody()
            group += body
            for c in report.claims:
                row = nodes.row()
                chapter_uri = env.app.builder.get_relative_uri(env.docname, f"book/{c.chapter}")
                para = nodes.paragraph()
                para += nodes.reference("", c.id, refuri=f"{chapter_uri}#claim-at-{c.id}", internal=True)
                row += nodes.entry("", para)
                row += nodes.entry("", nodes.paragraph(text=c.kind))
                row += nodes.entry("", nodes.paragraph(text=c.chapter))
                para = nodes.paragraph()
                if c.kind == "cited":
                    para += nodes.reference("", c.target, refuri=c.target)
                elif c.id in report.cells:
                    cell = report.cells[c.id]
                    uri = env.app.builder.get_relative_uri(env.docname, f"notebooks/{cell.notebook}")
                    para += nodes.reference(
                        "",
                        f"{cell.notebook}.ipynb, cell {cell.index}",
                        refuri=f"{uri}#claim-{c.id}",
                        internal=True,
                    )
                row += nodes.entry("", para)
                body += row
            n = report.counts()
            summary = nodes.paragraph(
                text=(
                    f"{len(report.claims)} claims: {n['live']} live, {n['model']} model, {n['cited']} cited."
                )
            )
            return [summary, table]

    def anchor_cells(app, doctree):
        """On a notebook page, give each tagged cell an anchor and a line back to its claim."""
        docname = app.env.docname
        if not docname.startswith("notebooks/"):
            return
        report = state(app.env)
        chapters = {c.id: c.chapter for c in report.claims}
        for node in doctree.findall(nodes.container):
            if node.get("nb_element") != "cell_code":
                continue
            for tag in node.get("cell_metadata", {}).get("tags", []):
                if not tag.startswith(TAG_PREFIX):
                    continue
                cid = tag[len(TAG_PREFIX) :]
                node["ids"].append(f"claim-{cid}")
                if cid in chapters:
                    uri = app.builder.get_relative_uri(docname, f"book/{chapters[cid]}")
                    para = nodes.paragraph(classes=["course-claim-backlink"])
                    para += nodes.Text("This cell asserts the claim ")
                    para += nodes.reference("", cid, refuri=f"{uri}#claim-at-{cid}", internal=True)
                    para += nodes.Text(".")
                    node.insert(0, para)

    def static(app):
        app.config.html_static_path.append(str(Path(__file__).parent / "static"))
        app.add_css_file("course-claims.css")

    app.add_role("claim", ClaimRole())
    app.add_directive("claim-inventory", ClaimInventory)
    app.connect("builder-inited", static)
    app.connect("doctree-read", anchor_cells)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


def main() -> int:
    report = check(ROOT)
    for error in report.errors:
        print(error)
    print(report.summary())
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
