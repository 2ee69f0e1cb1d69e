"""Chapters quote their notebooks faithfully, and every notebook's stored run kept the budget.

A chapter shows notebook output in ```text blocks. A block counts as a quote when at least
one of its lines is a line of the stored outputs of the chapter's notebooks (its own, and
any it pastes figures from with ``:doc:``); then every line must be one, compared with
runs of spaces collapsed, so that re-aligned columns still match. ``[...]`` marks an
elision: the line must begin like an output line. Blocks with no such line (commands to
type, diagrams) are not quotes.
"""

import json
import re
from datetime import datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BOOK, NOTEBOOKS = ROOT / "book", ROOT / "notebooks"
BUDGET_S = 60
ELISION = "[...]"


def _norm(line: str) -> str:
    return " ".join(line.split())


def output_lines(nb: dict) -> set:
    lines = set()
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            text = "".join(out.get("text", "")) + "\n" + "".join(out.get("data", {}).get("text/plain", ""))
            lines |= {_norm(line) for line in text.splitlines() if line.strip()}
    return lines


def misquoted(chapter: str, outputs: set) -> list:
    """The lines of the chapter's quotes that are not in ``outputs``."""
    wrong = []
    for block in re.findall(r"^```text\n(.*?)^```", chapter, re.M | re.S):
        lines = [_norm(line) for line in block.splitlines()]
        lines = [line for line in lines if line not in ("", "...", ELISION)]

        def found(line: str) -> bool:
            if ELISION in line:
                head = line.split(ELISION)[0].strip()
                return any(o.startswith(head) for o in outputs)
            return line in outputs

        hits = [found(line) for line in lines]
        if any(hits):
            wrong += [line for line, hit in zip(lines, hits, strict=True) if not hit]
    return wrong


def chapter_notebooks(md: Path) -> list:
    names = set(re.findall(r":doc: \.\./notebooks/([\w-]+)\.ipynb", md.read_text()))
    if (NOTEBOOKS / f"{md.stem}.ipynb").exists():
        names.add(md.stem)
    return sorted(NOTEBOOKS / f"{n}.ipynb" for n in names)


CHAPTERS = [md for md in sorted(BOOK.glob("*.md")) if chapter_notebooks(md)]


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.name)
def test_the_chapter_quotes_its_notebook_outputs_as_they_are(md):
    outputs = set().union(*(output_lines(json.loads(nb.read_text())) for nb in chapter_notebooks(md)))
    assert misquoted(md.read_text(), outputs) == []


def test_a_quote_that_drifted_from_the_output_is_caught():
    nb = {"cells": [{"outputs": [{"text": ["  fin_transmissions: 4\n", "  end_state: CLOSED\n"]}]}]}
    outputs = output_lines(nb)
    good = "```text\nfin_transmissions:   4\nend_state: CLOSED\n```\n"
    drifted = "```text\nfin_transmissions: 5\nend_state: CLOSED\n```\n"
    elided = "```text\nend_state: CL [...]\n```\n"
    command = "```text\ntimewait experiment orphan-retries\n```\n"
    assert misquoted(good, outputs) == []
    assert misquoted(drifted, outputs) == ["fin_transmissions: 5"]
    assert misquoted(elided, outputs) == []
    assert misquoted(command, outputs) == []


def stored_run_seconds(nb: dict) -> float:
    """Wall time of the stored run: first cell started to last cell finished."""
    stamps = []
    for cell in nb["cells"]:
        ex = cell.get("metadata", {}).get("execution", {})
        for key in ("iopub.status.busy", "iopub.status.idle"):
            if key in ex:
                stamps.append(datetime.fromisoformat(ex[key].replace("Z", "+00:00")))
    assert stamps, "no execution timestamps: run the notebook with jupyter execute"
    return (max(stamps) - min(stamps)).total_seconds()


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_the_stored_run_of_the_notebook_took_under_a_minute(path):
    assert stored_run_seconds(json.loads(path.read_text())) < BUDGET_S
