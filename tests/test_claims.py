"""Every claim in a chapter carries its evidence: a notebook cell that asserts it, or a source.

The check itself is ``book/_ext/course_claims.py`` (also the Sphinx extension that draws the
markers); these tests run it on the course and on edited copies of it.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import course_claims  # noqa: E402


def test_every_claim_of_the_course_has_its_evidence(capsys):
    report = course_claims.check(ROOT)
    with capsys.disabled():
        print("\n" + report.summary())
    assert report.errors == []
    assert report.claims, "no chapter marks a claim"


def _copy(tmp_path: Path) -> Path:
    for part in ("book", "notebooks"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("_static", "_build"))
    return tmp_path


def _check_script(root: Path) -> subprocess.CompletedProcess:
    script = root / "book" / "_ext" / "course_claims.py"
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, cwd=root)


def _first_live_claim():
    report = course_claims.check(ROOT)
    claim = next(c for c in report.claims if c.kind == "live")
    return claim, report.cells[claim.id]


def test_a_chapter_edited_to_add_an_unevidenced_claim_fails_the_check(tmp_path):
    root = _copy(tmp_path)
    assert _check_script(root).returncode == 0
    chapter = root / "book" / "open-close.md"
    chapter.write_text(
        chapter.read_text().replace(
            "with a 60-second timer.", "with a 60-second timer.{claim}`live:timer-is-sixty`", 1
        )
    )
    result = _check_script(root)
    assert result.returncode == 1
    assert "live claim timer-is-sixty has no cell tagged claim:timer-is-sixty" in result.stdout
    assert "claims: " in result.stdout  # the counts are printed either way


def test_a_claim_without_a_kind_or_with_an_unopenable_source_fails(tmp_path):
    text = (
        "A.{claim}`timer-is-sixty` B.{claim}`cited:tw-len <https://example.com/blog>` "
        "C.{claim}`cited:tw-src <https://elixir.bootlin.com/linux/latest/source/x.c>` "
        "D.{claim}`cited:rfc <https://www.rfc-editor.org/rfc/rfc9293#section-3.6>`\n"
    )
    claims, errors = course_claims.chapter_claims(text, "x")
    assert [c.id for c in claims] == ["tw-len", "tw-src", "rfc"]
    assert len(errors) == 3, errors
    assert "needs a kind" in errors[0]
    assert "tw-len" in errors[1] and "tw-src" in errors[2]


def test_a_bare_claim_in_a_chapter_that_marks_claims_fails(tmp_path):
    root = _copy(tmp_path)
    chapter = root / "book" / "open-close.md"
    chapter.write_text(chapter.read_text() + "\nLinux keeps the socket for 90 s.\n")
    result = _check_script(root)
    assert result.returncode == 1
    assert "bare claim: Linux keeps the socket for 90 s." in result.stdout


def test_a_removed_cell_and_an_orphan_tag_fail(tmp_path):
    claim, cell = _first_live_claim()
    root = _copy(tmp_path)
    path = root / "notebooks" / f"{cell.notebook}.ipynb"
    nb = json.loads(path.read_text())
    tags = nb["cells"][cell.index]["metadata"]["tags"]
    tags.remove(f"claim:{claim.id}")
    tags.append("claim:nobody-claims-this")
    path.write_text(json.dumps(nb))
    out = _check_script(root).stdout
    assert f"has no cell tagged claim:{claim.id}" in out
    assert "tag claim:nobody-claims-this belongs to no claim" in out


def test_a_cell_whose_assert_does_not_check_a_result_fails(tmp_path):
    claim, cell = _first_live_claim()
    root = _copy(tmp_path)
    path = root / "notebooks" / f"{cell.notebook}.ipynb"
    nb = json.loads(path.read_text())
    nb["cells"][cell.index]["source"] = ["print('the result is fine')\n", "assert True\n"]
    path.write_text(json.dumps(nb))
    out = _check_script(root).stdout
    assert f"the cell tagged claim:{claim.id}" in out and "holds no assert" in out


@pytest.mark.parametrize(
    "source, ok",
    [
        ("r = run('x')\nassert r.end_state == 'CLOSED'", True),
        ("r = run('x')\nstate = r.end_states['client']\nassert state == 'TIME_WAIT'", True),
        ("rows = [run('x', n=n) for n in range(3)]\nassert all(x.ok for x in rows)", True),
        (
            "rows = []\nfor n in (1, 2):\n    rows.append(run('x', n=n).state)\nassert rows == ['A', 'B']",
            True,
        ),
        ("r = run('x')\nassert 1 == 1", False),
        ("r = run('x')\nassert True", False),
        ("other = 60\nassert other == 60", False),
    ],
)
def test_an_assert_counts_only_when_it_uses_an_experiments_result(source, ok):
    cells = ["from timewait.experiments import run", source]
    names = course_claims.derived_names(cells, course_claims.LIVE_MODULES)
    assert course_claims.asserts_on(source, names) is ok


def test_the_readme_states_the_counts_the_check_finds():
    import re

    report = course_claims.check(ROOT)
    n = report.counts()
    readme = (ROOT / "README.md").read_text()
    stated = re.search(r"counts (\d+) claims: (\d+) live, (\d+) model, (\d+) cited", readme)
    assert stated, "README.md no longer states the claim counts"
    assert tuple(map(int, stated.groups())) == (len(report.claims), n["live"], n["model"], n["cited"])


def test_a_kernel_commit_is_a_source_at_a_fixed_version_and_a_branch_head_is_not():
    commit = (
        "https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/commit/"
        "?id=4396e46187ca5070219b81773c4e65088dac50cc"
    )
    head = "https://git.kernel.org/pub/scm/linux/kernel/git/torvalds/linux.git/commit/"
    text = f"A.{{claim}}`cited:gone <{commit}>` B.{{claim}}`cited:moving <{head}>`\n"
    claims, errors = course_claims.chapter_claims(text, "x")
    assert [c.id for c in claims] == ["gone", "moving"]
    assert len(errors) == 1 and "moving" in errors[0]
