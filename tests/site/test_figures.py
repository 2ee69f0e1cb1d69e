"""Every SVG picture on the site, read in headless Chromium at a desktop width (1280 px) and a
phone width (390 px): the figures the notebooks draw (inline SVG, timewait.plots.FigureHTML)
and the widget panels' stored snapshots alike.

In each picture no text box overlaps another or leaves the picture, measured by the browser
on the rendered page; every text is drawn at least MIN_TEXT_PX CSS pixels high (its font
size times the picture's scale); a figure wider than its column shows the scroll cue, and the
state diagram (book/open-close.html) fits the desktop column without scrolling. Saves
a screenshot of a figure of three chapters at each width, and what it measured
(pictures-WIDTH.txt), in _build/site-test/.

Runs with the browser test (`make test-site`, TIMEWAIT_SITE_BROWSER=1).
"""

from __future__ import annotations

import os
import re

import pytest
import site_weight
from conftest import ARTIFACTS, HTML

in_browser = pytest.mark.skipif(
    os.environ.get("TIMEWAIT_SITE_BROWSER") != "1",
    reason="the browser test runs in `make test-site` (or set TIMEWAIT_SITE_BROWSER=1)",
)

WIDTHS = (1280, 390)
DESKTOP = 1280  # the width at which the state diagram must fit its column
# The smallest text a reader should have to read in a picture, in CSS pixels (the panels'
# own test holds their pictures to the same).
MIN_TEXT_PX = 10
WIDGET_RENDER_TIMEOUT_MS = 15_000
# Pages photographed at each width, at the picture the selector finds first.
SHOTS = {
    "book/reliable-termination.html": "figure.timewait-figure",
    "book/why-2msl.html": "figure.timewait-figure",
    "book/open-close.html": "figure.course-state-diagram",
}

# Pictures: SVGs that are not the theme's icons (aria-hidden, or in a button) nor part of
# another SVG, shown at a size, with text. Boxes in CSS pixels of the page.
PICTURES_JS = """() => [...document.querySelectorAll('svg')].filter(s =>
    !s.closest('[aria-hidden="true"], button') && !s.parentElement.closest('svg')
    && s.getBoundingClientRect().width > 0 && s.querySelector('text')).map(svg => {
  const r = svg.getBoundingClientRect();
  const vb = svg.viewBox.baseVal;
  const scale = vb && vb.width ? r.width / vb.width : 1;
  const frame = svg.closest('div.timewait-figure-frame');
  return {
    label: (svg.getAttribute('aria-label') || '').slice(0, 60),
    figure: !!svg.closest('figure.timewait-figure'),
    state_diagram: !!svg.closest('figure.course-state-diagram'),
    box: [r.left, r.top, r.width, r.height],
    wider_than_column: !!frame && frame.scrollWidth > frame.clientWidth + 1,
    cue: frame ? getComputedStyle(frame).backgroundImage : '',
    texts: [...svg.querySelectorAll('text')].filter(t => t.textContent.trim()).map(t => {
      const b = t.getBoundingClientRect();
      // The smallest font in the text: a superscript (a tspan) counts too.
      const size = Math.min(...[t, ...t.querySelectorAll('tspan')].map(
          e => parseFloat(getComputedStyle(e).fontSize)));
      return [t.textContent.replace(/\\s+/g, ' ').trim().slice(0, 40), b.left, b.top, b.width,
              b.height, size * scale]; }),
  };
})"""
WIDGETS_RENDERED_JS = """() => [...document.querySelectorAll(
    'script[type="application/vnd.jupyter.widget-view+json"]')].every(v => {
  const p = v.previousElementSibling;
  return p && p.classList.contains('widget-subarea') && p.children.length > 0; })"""


def picture_problems(pictures: list, where: str) -> list:
    """Text boxes that overlap one another or leave their picture, and text drawn smaller
    than MIN_TEXT_PX, in the pictures PICTURES_JS measured."""
    problems = []
    for k, pic in enumerate(pictures, start=1):
        name = f"{where} picture {k} ({pic['label'][:40]!r})"
        px, py, pw, ph = pic["box"]
        boxes = pic["texts"]
        for text, x, y, w, h, size in boxes:
            if x < px - 0.5 or y < py - 0.5 or x + w > px + pw + 0.5 or y + h > py + ph + 0.5:
                problems.append(f"{name}: {text!r} leaves the picture")
            if size < MIN_TEXT_PX - 0.05:
                problems.append(f"{name}: {text!r} drawn {size:.1f} px high")
        for i, (a, ax, ay, aw, ah, _) in enumerate(boxes):
            for b, bx, by, bw, bh, _ in boxes[i + 1 :]:
                dx = min(ax + aw, bx + bw) - max(ax, bx)
                dy = min(ay + ah, by + bh) - max(ay, by)
                if dx > 0.5 and dy > 0.5:
                    problems.append(f"{name}: {a!r} overlaps {b!r}")
        if pic["wider_than_column"] and "gradient" not in pic["cue"]:
            problems.append(f"{name}: wider than its column without a scroll cue")
    return problems


def state_diagram_problems(pictures: list, where: str) -> list:
    """The state diagram wider than its column (so scrolling sideways) at the desktop width."""
    return [
        f"{where} the state diagram is wider than its column ({pic['box'][2]:.0f} px drawn)"
        for pic in pictures
        if pic.get("state_diagram") and pic["wider_than_column"]
    ]


def test_check_finds_a_state_diagram_that_scrolls():
    pic = {"label": "", "box": [0, 0, 864, 780], "wider_than_column": True, "cue": "linear-gradient"}
    assert state_diagram_problems([dict(pic, state_diagram=True)], "p") != []
    assert state_diagram_problems([dict(pic, state_diagram=False)], "p") == []
    assert state_diagram_problems([dict(pic, state_diagram=True, wider_than_column=False)], "p") == []


def test_check_finds_overlaps_clipping_and_small_text():
    """The measuring itself: boxes that cross, leave the picture or are too small are found."""
    pic = {
        "label": "x",
        "box": [0, 0, 100, 50],
        "wider_than_column": True,
        "cue": "none",
        "texts": [
            ["CLOSED", 10, 10, 30, 10, 10],
            ["SYN_SENT", 30, 15, 30, 10, 10],
            ["TIME_WAI", 80, 30, 30, 10, 10],
            ["small", 10, 35, 10, 5, 6.5],
        ],
    }
    found = picture_problems([pic], "p")
    assert any("'CLOSED' overlaps 'SYN_SENT'" in p for p in found)
    assert any("'TIME_WAI' leaves the picture" in p for p in found)
    assert any("'small' drawn 6.5 px high" in p for p in found)
    assert any("without a scroll cue" in p for p in found)
    apart = dict(pic, cue="linear-gradient(...)", texts=[pic["texts"][0], ["LISTEN", 60, 10, 30, 10, 10]])
    assert picture_problems([apart], "p") == []


@in_browser
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("width", WIDTHS)
def test_every_picture_is_legible_with_no_text_over_text(served_browser, width):
    browser, base = served_browser
    context = browser.new_context(viewport={"width": width, "height": 900})
    context.route(
        re.compile(r"^(?!" + re.escape(base) + ").*"),
        lambda route: route.abort(),
    )
    page = context.new_page()
    problems, pictures, figures, smallest, diagrams = [], 0, 0, float("inf"), []
    for name in site_weight.site_pages(HTML):
        page.goto(base + name, wait_until="load", timeout=60_000)
        try:
            page.wait_for_function(WIDGETS_RENDERED_JS, timeout=WIDGET_RENDER_TIMEOUT_MS)
        except Exception:  # test_browser reports snapshots that did not render
            pass
        page.evaluate("document.fonts.ready")
        found = page.evaluate(PICTURES_JS)
        pictures += len(found)
        figures += sum(p["figure"] for p in found)
        smallest = min([smallest] + [t[5] for p in found for t in p["texts"]])
        problems += picture_problems(found, f"{name} at {width} px:")
        diagrams += [(name, p["box"][2], p["texts"]) for p in found if p.get("state_diagram")]
        if width == DESKTOP:
            problems += state_diagram_problems(found, f"{name} at {width} px:")
        if name in SHOTS:
            first = page.locator(SHOTS[name]).first
            first.scroll_into_view_if_needed()
            stem = name.split("/")[-1].removesuffix(".html")
            page.screenshot(path=str(ARTIFACTS / f"figure-{stem}-{width}.png"))
    context.close()
    summary = f"{width} px: {pictures} pictures ({figures} figures), smallest text {smallest:.1f} px"
    for name, drawn, texts in diagrams:
        summary += (
            f"; state diagram on {name}: drawn {drawn:.0f} px wide, "
            f"smallest text {min(t[5] for t in texts):.1f} px"
        )
    (ARTIFACTS / f"pictures-{width}.txt").write_text("\n".join([summary, *problems]) + "\n")
    print(summary)
    assert figures, "no figure found on the site: the check saw nothing to check"
    assert diagrams, "no state diagram found on the site: the check saw nothing to check"
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:40])
