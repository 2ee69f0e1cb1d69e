"""Wide preformatted outputs (tables, doctor's advice, port budgets) in headless Chromium: on
screen one that is wider than its column shows a scroll cue; printed, it wraps and keeps all
its text within the page. A PDF of each page, as the browser's print to PDF makes it, is
saved in _build/site-test/.

Runs with the browser test (`make test-site`, TIMEWAIT_SITE_BROWSER=1).
"""

from __future__ import annotations

import os

import pytest
import site_weight
from conftest import ARTIFACTS, HTML

pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.skipif(
        os.environ.get("TIMEWAIT_SITE_BROWSER") != "1",
        reason="the browser test runs in `make test-site` (or set TIMEWAIT_SITE_BROWSER=1)",
    ),
]

OUTPUTS_JS = """() => [...document.querySelectorAll('div.cell_output pre, div.output pre')]
  .map(p => ({text: p.textContent.slice(0, 40), wide: p.scrollWidth > p.clientWidth + 1,
              cue: getComputedStyle(p).backgroundImage,
              white: getComputedStyle(p).whiteSpace, chars: p.textContent.length}))"""


def _notebook_pages():
    return [p for p in site_weight.site_pages(HTML) if p.startswith("notebooks/")]


def test_wide_outputs_show_a_scroll_cue_and_wrap_in_print(served_browser):
    browser, base = served_browser
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.route(
        "**/*", lambda route: route.continue_() if route.request.url.startswith(base) else route.abort()
    )
    page = context.new_page()
    problems, wide_seen = [], 0
    for name in _notebook_pages():
        page.emulate_media(media="screen")
        page.goto(base + name, wait_until="load")
        for out in page.evaluate(OUTPUTS_JS):
            if out["wide"]:
                wide_seen += 1
                if "gradient" not in out["cue"]:
                    problems.append(f"{name}: wide output without a scroll cue: {out['text']!r}")
        page.emulate_media(media="print")
        for out in page.evaluate(OUTPUTS_JS):
            if out["wide"] or out["white"] != "pre-wrap":
                problems.append(f"{name}: printed, an output is cut: {out['text']!r}")
        if name in ("notebooks/doctor.html", "notebooks/old-duplicates.html"):
            page.pdf(path=str(ARTIFACTS / (name.replace("/", "-").replace(".html", ".pdf"))))
    context.close()
    assert wide_seen, "no output wider than its column: the check saw nothing to check"
    assert not problems, "\n".join(problems[:30])
