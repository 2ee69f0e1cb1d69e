"""Chapters quote their notebooks faithfully, and every notebook's stored run kept the budget.

A chapter shows notebook output in ```text blocks, and only there: commands to type are
```console blocks, drawings ```none. Every line of a ```text block must be a line of the
stored outputs of the chapter's notebooks (its own, and any it pastes figures from with
``:doc:``), compared with runs of spaces collapsed, so that re-aligned columns still match.
``[...]`` marks an elision: the line must begin like an output line. Two outputs may stand
side by side: the block is then read as two columns, split where its first line's second
output begins.
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


def _not_found(raw_lines: list, outputs: set) -> list:
    def found(line: str) -> bool:
        if ELISION in line:
            head = line.split(ELISION)[0].strip()
            return any(o.startswith(head) for o in outputs)
        return line in outputs

    lines = [_norm(line) for line in raw_lines]
    return [line for line in lines if line not in ("", "...", ELISION) and not found(line)]


def _columns(raw_lines: list, outputs: set) -> list:
    """The block as two columns, split where a second output begins on its first line (after
    three or more spaces), or [] if no such split makes its first line two output lines."""
    first = raw_lines[0] if raw_lines else ""
    for gap in re.finditer(r" {3,}(?=\S)", first):
        left, right = _norm(first[: gap.start()]), _norm(first[gap.end() :])
        if left in outputs and right in outputs:
            cut = gap.end()
            return [[line[:cut] for line in raw_lines], [line[cut:] for line in raw_lines]]
    return []


def misquoted(chapter: str, outputs: set) -> list:
    """The lines of the chapter's quotes that are not in ``outputs``."""
    wrong = []
    for block in re.findall(r"^```text\n(.*?)^```", chapter, re.M | re.S):
        raw = block.splitlines()
        missing = _not_found(raw, outputs)
        columns = _columns(raw, outputs) if missing else []
        if columns:
            missing = [line for column in columns for line in _not_found(column, outputs)]
        wrong += missing
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
    command = "```console\ntimewait experiment orphan-retries\n```\n"
    assert misquoted(good, outputs) == []
    assert misquoted(drifted, outputs) == ["fin_transmissions: 5"]
    assert misquoted(elided, outputs) == []
    assert misquoted(command, outputs) == []
    # A quote whose every line drifted is caught too (a re-run that changed all its numbers).
    assert misquoted("```text\nfin_transmissions: 6\n```\n", outputs) == ["fin_transmissions: 6"]


def test_two_outputs_side_by_side_are_read_as_two_columns():
    nb = {
        "cells": [
            {"outputs": [{"text": ["run (retries=1)\n", "  fins: 4\n", "run (retries=2)\n", "  fins: 5\n"]}]}
        ]
    }
    outputs = output_lines(nb)
    side_by_side = "```text\nrun (retries=1)   run (retries=2)\n  fins: 4           fins: 5\n```\n"
    drifted = "```text\nrun (retries=1)   run (retries=2)\n  fins: 4           fins: 6\n```\n"
    assert misquoted(side_by_side, outputs) == []
    assert misquoted(drifted, outputs) == ["fins: 6"]


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
