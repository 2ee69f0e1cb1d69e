"""The built site (run after `jupyter-book build`): pages, figures with alt text, buttons."""
import re
from pathlib import Path

import pytest

HTML = Path(__file__).resolve().parents[2] / "_build" / "html"
pytestmark = pytest.mark.skipif(not (HTML / "index.html").exists(),
                                reason="the site is not built; `make test-book` builds it first")


def pages():
    return sorted(p for p in HTML.rglob("*.html")
                  if "_static" not in p.parts and p.name not in ("genindex.html", "search.html"))


def test_every_toc_entry_has_a_page():
    toc = (HTML.parent.parent / "_toc.yml").read_text()
    for entry in re.findall(r"(?:root|file):\s*(\S+)", toc):
        assert (HTML / f"{entry}.html").exists(), entry


def test_chapter_one_shows_the_captured_sequence_diagrams():
    page = (HTML / "book" / "open-close.html").read_text()
    imgs = re.findall(r"<img[^>]*>", page)
    assert len(imgs) >= 3
    assert "Four-way close: the client closes first. Sequence diagram" in page
    assert "client to server: FIN|ACK" in page


def test_no_image_lacks_alt_text():
    for page in pages():
        for img in re.findall(r"<img[^>]*>", page.read_text()):
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
