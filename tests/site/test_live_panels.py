"""The live panels of the built site, in headless Chromium with every other host refused.

On each page with a panel that can run in the page, the reader's click loads Pyodide and the
course library from the site itself; the test then moves each kind of control (dropdown,
slider, checkbox, number field, multiple choice) and requires the panel to show what the
same panel computes here, in the test process, for the settings the browser shows. The
sweep panel runs its sweeps in plain Python there (the site serves no numpy): here too, with
the same trials and seed, and its chart must change with every control moved and equal,
element by element, the chart drawn here. It times the click to a live
panel (a fresh browser cache, then a warm one) and control changes to the redraw, measures
the text boxes of every SVG picture the panels draw (none may overlap another or leave the
picture), and saves screenshots at 1280 and 390 px wide. The figures go to
_build/site-test/live-panels.txt.

Runs with the browser test (`make test-site`, TIMEWAIT_SITE_BROWSER=1).
"""

from __future__ import annotations

import gzip
import html
import json
import math
import os
import re
import statistics
import time
import xml.etree.ElementTree as ET

import pytest
import site_assets
from conftest import ARTIFACTS, HTML, ROOT

from timewait import webpage
from timewait.widgets import PortBudgetCalculator, SequenceExplorer, SweepExplorer

LIVE_TIMEOUT_MS = 120_000
REDRAWS = 20

pytestmark = [
    pytest.mark.timeout(1200),
    pytest.mark.skipif(
        os.environ.get("TIMEWAIT_SITE_BROWSER") != "1",
        reason="the browser test runs in `make test-site` (or set TIMEWAIT_SITE_BROWSER=1)",
    ),
]


def _panel_pages() -> dict:
    """{page: [(call, kwargs, live?)]} for every notebook page that shows a panel."""
    pages = {}
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        panels = site_assets.notebook_panels(nb)
        if panels:
            pages[f"notebooks/{nb.stem}.html"] = [
                (call, kwargs, call in webpage.PANELS and kwargs is not None)
                for call, kwargs in panels.values()
            ]
    return pages


# Every text box of every SVG picture in the element, measured by the browser: each
# picture's boxes in its own coordinates, with its viewBox.
SVG_BOXES_JS = """root => [...root.querySelectorAll('svg')].map(svg => {
  const vb = svg.viewBox.baseVal;
  return {label: (svg.getAttribute('aria-label') || '').slice(0, 60),
          view: [vb.x, vb.y, vb.width, vb.height],
          texts: [...svg.querySelectorAll('text')].map(t => {
            const b = t.getBBox(); return [t.textContent, b.x, b.y, b.width, b.height]; })};
})"""


def _overlaps(pictures) -> list:
    problems = []
    for pic in pictures:
        vx, vy, vw, vh = pic["view"]
        boxes = pic["texts"]
        for text, x, y, w, h in boxes:
            if x < vx - 0.5 or y < vy - 0.5 or x + w > vx + vw + 0.5 or y + h > vy + vh + 0.5:
                problems.append(f"{text!r} leaves the picture ({pic['label']})")
        for i, (a, ax, ay, aw, ah) in enumerate(boxes):
            for b, bx, by, bw, bh in boxes[i + 1 :]:
                dx = min(ax + aw, bx + bw) - max(ax, bx)
                dy = min(ay + ah, by + bh) - max(ay, by)
                if dx > 0.5 and dy > 0.5:
                    problems.append(f"{a!r} overlaps {b!r} ({pic['label']})")
    return problems


def _svg_texts(markup: str) -> list:
    """The text of every <text> of the SVG pictures in an HTML fragment, in order."""
    out = []
    for svg in re.findall(r"<svg.*?</svg>", markup, flags=re.S):
        out += [t.text or "" for t in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}text")]
    return out


def _plain(markup: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


class Reader:
    """One browser context (its own cache), every other host refused and recorded."""

    def __init__(self, browser, base, width=1280):
        self.base = base
        self.context = browser.new_context(viewport={"width": width, "height": 900})
        self.refused, self.errors = [], []
        self.context.route(
            re.compile(r"^(?!" + re.escape(base) + ").*"),
            lambda route: (self.refused.append(route.request.url), route.abort()),
        )

    def open(self, page_name):
        page = self.context.new_page()
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.goto(self.base + page_name, wait_until="load", timeout=60_000)
        page.wait_for_selector(".course-panel-bar", timeout=30_000)
        return page

    def make_live(self, page, call) -> dict:
        bar = page.locator(f".course-panel-bar[data-panel={call}]").first
        bar.locator("button").click()
        page.wait_for_function(
            """call => [...document.querySelectorAll('.course-panel-bar')].some(b =>
                 b.dataset.panel === call && ['live', 'failed'].includes(b.dataset.state))""",
            arg=call,
            timeout=LIVE_TIMEOUT_MS,
        )
        facts = bar.evaluate(
            "b => ({state: b.dataset.state, seconds: +b.dataset.seconds, "
            "bytes: +b.dataset.bytes, phases: b.dataset.phases, "
            "text: b.innerText})"
        )
        assert facts["state"] == "live", facts["text"]
        return facts

    def close(self):
        self.context.close()


def _live(page, call):
    """The live panel's element (after its bar)."""
    return page.locator(f".course-panel-bar[data-panel={call}][data-state=live] + .course-panel-live").first


def _field(panel, label, kind):
    if kind == "checkbox":  # its label is beside the box
        return panel.locator(f".widget-checkbox:has(span:text-is('{label}'))").first
    return panel.locator(f".widget-{kind}:has(label:text-is('{label}'))").first


def _wait_redraw(page, panel, before):
    page.wait_for_function(
        "([el, before]) => el.innerHTML !== before", arg=[panel.element_handle(), before], timeout=10_000
    )


def _sequence_state(panel) -> dict:
    """What the browser's panel shows: its settings and its output."""
    return panel.evaluate("""el => {
      const f = l => [...el.querySelectorAll('.widget-inline-hbox')].find(w =>
          [...w.querySelectorAll('label.widget-label, .widget-label-basic span')]
            .some(t => t.textContent === l));
      const readout = l => f(l).querySelector('.widget-readout').textContent.trim();
      const input = l => f(l).querySelector('input, select');
      return {scenario: input('scenario').value, closer: input('closes first').value,
              loss: readout('loss'), final_ack_losses: readout('final ACKs lost'),
              delay: input('delay (s)').value, time_wait_msl: readout('TIME_WAIT (MSL)'),
              msl: input('MSL (s)').value, merged: input('merged FIN/ACK').checked,
              seed: input('seed').value,
              html: [...el.querySelectorAll('.widget-html-content')].map(h => h.innerHTML)};
    }""")


def _expected_sequence(shown: dict) -> SequenceExplorer:
    p = SequenceExplorer()
    p.scenario.value = shown["scenario"]
    p.closer.value = shown["closer"]
    p.loss.value = float(shown["loss"])
    p.final_ack_losses.value = int(shown["final_ack_losses"])
    p.delay.value = float(shown["delay"])
    p.time_wait_msl.value = float(shown["time_wait_msl"])
    p.msl.value = float(shown["msl"])
    p.merged.value = bool(shown["merged"])
    p.seed.value = int(shown["seed"])
    p.update()
    return p


def _check_sequence(panel):
    shown = _sequence_state(panel)
    expected = _expected_sequence(shown)
    status, diagram = shown["html"][0], shown["html"][1]
    assert _plain(status) == _plain(expected.status.value), shown
    assert _svg_texts(diagram) == _svg_texts(expected.diagram.value), shown["scenario"]
    return shown


def test_every_panel_is_marked_and_live_ones_follow_the_model(served_browser):
    b, base = served_browser
    results, problems, redraws, sweep_redraws = {}, [], [], []
    pages = _panel_pages()
    assert pages, "no notebook shows a panel"
    cold_reader = None
    for page_name, panels in pages.items():
        reader = Reader(b, base)
        page = reader.open(page_name)
        bars = page.eval_on_selector_all(
            ".course-panel-bar", "bs => bs.map(b => [b.dataset.panel, b.dataset.state, b.innerText])"
        )
        assert len(bars) == len(panels), (page_name, bars)
        for (call, _, live), (shown_call, state, text) in zip(panels, bars, strict=True):
            assert shown_call == call
            assert "Static snapshot" in text, text  # said before anything else
            assert state == ("snapshot" if live else "static"), (page_name, call, state)
            if not live:
                assert "JupyterLite" in text or "Binder" in text, text
        for call in {c for c, _, live in panels if live}:
            facts = reader.make_live(page, call)
            results.setdefault("cold", []).append((page_name, call, facts))
            phases = json.loads(facts["phases"])
            # Python restored from the site's snapshot, not started the slow way
            assert phases.get("runtime_already_running") or phases["from_snapshot"] is True, phases
            panel = _live(page, call)
            if call == "sequence_explorer":
                redraws += _drive_sequence_explorer(page, panel, problems)
            elif call == "sweep_explorer":
                sweep_redraws += _drive_sweep_explorer(page, panel, problems)
            else:
                _drive_port_budget(page, panel)
        assert not reader.refused, reader.refused
        assert not reader.errors, reader.errors
        if cold_reader is None and any(live for _, _, live in panels):
            cold_reader = (reader, page_name)
        else:
            reader.close()
    # Warm: the same browser cache, a new page.
    reader, page_name = cold_reader
    page = reader.open(page_name)
    call = next(c for c, _, live in pages[page_name] if live)
    results["warm"] = [(page_name, call, reader.make_live(page, call))]
    assert not reader.refused, reader.refused
    reader.close()
    _fail_on(problems, "SVG text boxes in the live panels")
    _report(results, redraws, sweep_redraws)


def test_a_browser_that_cannot_restore_the_snapshot_starts_python_and_the_panel_still_runs(served_browser):
    """The snapshot options are experimental in Pyodide: when restoring fails (here the
    snapshot served is not one), the page starts Python, unpacks every package file, and the
    panel follows the model all the same; the reader sees no error."""
    b, base = served_browser
    reader = Reader(b, base)
    reader.context.route(
        re.compile(re.escape(base) + r".*\.snapshot\.gz$"),
        lambda route: route.fulfill(status=200, body=b"not a snapshot" * 1000),
    )
    try:
        page = reader.open("notebooks/reliable-termination.html")
        facts = reader.make_live(page, "sequence_explorer")
        assert json.loads(facts["phases"])["from_snapshot"] is False, facts
        # what this way downloads: the runtime and every package file
        manifest = json.loads((HTML / "_static" / "vendor" / "panels" / "panels.json").read_text())
        ours = (manifest["rest"], manifest["snapshot"])
        runtime = sum(n for f, n in manifest["bytes"].items() if f not in ours)
        assert facts["bytes"] == runtime + manifest["fallback"]["bytes"], facts
        assert "Live:" in facts["text"]
        panel = _live(page, "sequence_explorer")
        _check_sequence(panel)
        select = _field(panel, "scenario", "dropdown").locator("select")
        before = panel.inner_html()
        select.select_option("merged-close")
        _wait_redraw(page, panel, before)
        assert _check_sequence(panel)["scenario"] == "merged-close"
        assert not reader.refused, reader.refused
        assert not reader.errors, reader.errors
    finally:
        reader.close()


def test_the_page_does_not_keep_the_snapshot_once_python_is_restored(served_browser):
    """Pyodide keeps the options it was loaded with for the page's lifetime, the snapshot
    among them; the page detaches the snapshot's memory once Python is restored. Measured
    by the browser: the memory behind the page's ArrayBuffers (not the WebAssembly heap)."""
    b, base = served_browser
    served = HTML / "_static" / "vendor" / "panels"
    manifest = json.loads((served / "panels.json").read_text())
    snapshot_bytes = len(gzip.decompress((served / manifest["snapshot"]).read_bytes()))
    reader = Reader(b, base)
    try:
        page = reader.open("notebooks/reliable-termination.html")
        cdp = reader.context.new_cdp_session(page)
        facts = reader.make_live(page, "sequence_explorer")
        assert json.loads(facts["phases"])["from_snapshot"] is True, facts
        cdp.send("HeapProfiler.collectGarbage")
        held = cdp.send("Runtime.getHeapUsage")["backingStorageSize"]
        assert held < snapshot_bytes / 2, (held, snapshot_bytes)
    finally:
        reader.close()


def _drive_sequence_explorer(page, panel, problems) -> list:
    """Move each kind of control, compare with the model here after each; measure the box of
    every SVG text for each scenario; time slider steps to the redraw. Returns the times."""
    _check_sequence(panel)
    problems += _overlaps(panel.evaluate(SVG_BOXES_JS))
    select = _field(panel, "scenario", "dropdown").locator("select")
    for scenario in ("four-way-close", "merged-close", "simultaneous-close", "lost-fin", "lost-final-ack"):
        before = panel.inner_html()
        select.select_option(scenario)
        if scenario != "lost-final-ack" or before.count("lost-final-ack") == 0:
            _wait_redraw(page, panel, before)
        assert _check_sequence(panel)["scenario"] == scenario
        problems += _overlaps(panel.evaluate(SVG_BOXES_JS))
    # A checkbox, a number field and a slider.
    before = panel.inner_html()
    _field(panel, "merged FIN/ACK", "checkbox").locator("input").click()
    _wait_redraw(page, panel, before)
    assert _check_sequence(panel)["merged"] is True
    before = panel.inner_html()
    delay = _field(panel, "delay (s)", "text").locator("input")
    delay.fill("0.02")
    delay.press("Enter")
    _wait_redraw(page, panel, before)
    assert _check_sequence(panel)["delay"] == "0.02"
    # The seed changes nothing without loss: the page has nothing to redraw; the panel
    # still has to match the model for the seed it shows.
    seed = _field(panel, "seed", "text").locator("input")
    seed.fill("7")
    seed.press("Enter")
    page.wait_for_timeout(500)
    assert _check_sequence(panel)["seed"] == "7"
    handle = _field(panel, "TIME_WAIT (MSL)", "hslider").locator(".noUi-handle")
    times = []
    for i in range(REDRAWS):
        before = panel.inner_html()
        key = "ArrowLeft" if i % 2 else "ArrowRight"
        handle.focus()
        elapsed = page.evaluate(
            """([el, key]) => new Promise(done => {
            const handle = el.querySelector('.widget-hslider .noUi-handle');
            const t0 = performance.now();
            const svgBefore = [...el.querySelectorAll('svg')].map(s => s.outerHTML).join();
            const seen = new MutationObserver(() => {
              const now = [...el.querySelectorAll('svg')].map(s => s.outerHTML).join();
              if (now !== svgBefore) { seen.disconnect(); done(performance.now() - t0); }
            });
            seen.observe(el, {subtree: true, childList: true, characterData: true});
            handle.dispatchEvent(new KeyboardEvent('keydown', {key, bubbles: true}));
          })""",
            [panel.element_handle(), key],
        )
        times.append(elapsed)
        shown = _check_sequence(panel)
        assert before != panel.inner_html()
    assert shown["time_wait_msl"] in ("2.00", "1.99", "2.01", "0.00", "0.01", "0.02"), shown
    return times


def _drive_port_budget(page, panel):
    def check():
        shown = panel.evaluate("""el => {
          const v = l => [...el.querySelectorAll('.widget-inline-hbox')].find(w =>
              (w.querySelector('label') || {}).textContent === l).querySelector('input').value;
          return {low: v('lowest port'), high: v('highest port'), tw: v('TIME_WAIT (s)'),
                  rate: v('conn/s'), pre: (el.querySelector('pre') || {}).textContent || ''};
        }""")
        expected = PortBudgetCalculator(
            rate=float(shown["rate"]),
            time_wait=float(shown["tw"]),
            port_range=(int(shown["low"]), int(shown["high"])),
        )
        assert expected.ok
        assert shown["pre"] == expected.budget.text(), shown
        return shown

    check()
    for label, value in (("conn/s", "250"), ("highest port", "40100"), ("TIME_WAIT (s)", "30")):
        before = panel.inner_html()
        field = _field(panel, label, "text").locator("input")
        field.fill(value)
        field.press("Enter")
        _wait_redraw(page, panel, before)
        assert check()[{"conn/s": "rate", "highest port": "high", "TIME_WAIT (s)": "tw"}[label]] == value


SWEEP_STATE_JS = """el => {
  const f = l => [...el.querySelectorAll('.widget-inline-hbox')].find(w =>
      [...w.querySelectorAll('label.widget-label, .widget-label-basic span')]
        .some(t => t.textContent === l));
  const input = l => f(l).querySelector('input, select');
  const chosen = l => [...f(l).querySelectorAll('option')].filter(o => o.selected)
      .map(o => o.textContent);
  const html = [...el.querySelectorAll('.widget-html-content')].map(h => h.innerHTML);
  return {sweep: input('estimate').value, isn: chosen('ISN policy'),
          reconnect: input('reconnect (s)').value, timestamps: input('timestamps (PAWS)').checked,
          time_wait_msl: chosen('TIME_WAIT (MSL)'), trials: input('trials').value,
          seed: input('seed').value,
          disabled: Object.fromEntries(['estimate', 'ISN policy', 'reconnect (s)',
            'timestamps (PAWS)', 'TIME_WAIT (MSL)', 'trials', 'seed']
            .map(l => [l, input(l).disabled])),
          status: html[0], chart: html[1]};
}"""


def _svg_elements(markup: str) -> list:
    """The chart's SVG as (tag, attributes, text) for every element, in order: the same for
    the markup written here and for what the browser made of it."""
    svg = re.search(r"<svg.*</svg>", markup, flags=re.S)
    assert svg, markup[:200]
    return [
        (e.tag, sorted(e.attrib.items()), (e.text or "").strip()) for e in ET.fromstring(svg.group(0)).iter()
    ]


def _untimed(status: str) -> str:
    """The status line without the milliseconds the run took."""
    return re.sub(r" in \d+ ms", "", _plain(status))


def _expected_sweep(shown: dict) -> SweepExplorer:
    """The sweep panel built here with the settings the browser shows, its sweeps in plain
    Python as in the page."""
    p = SweepExplorer(
        sweep=shown["sweep"], trials=int(shown["trials"]), seed=int(shown["seed"]), backend="python"
    )
    p.isn.value = tuple(shown["isn"])
    p.reconnect_delay.value = float(shown["reconnect"])
    p.timestamps.value = bool(shown["timestamps"])
    p.time_wait_msl.value = tuple(float(v) for v in shown["time_wait_msl"])
    p.update()
    return p


def _check_sweep(page, panel) -> dict:
    """The browser's sweep panel equals the panel computed here for its settings: the
    chart element by element (every point's hits, trials, estimate and interval are in
    it), the status line but for its milliseconds, and which controls are disabled. The
    status line arrives just after the chart: wait for it a little."""
    deadline = time.monotonic() + 10
    while True:
        shown = panel.evaluate(SWEEP_STATE_JS)
        expected = _expected_sweep(shown)
        if _untimed(shown["status"]) == _untimed(expected.status.value) or time.monotonic() > deadline:
            break
        page.wait_for_timeout(100)
    assert expected.ok, expected.status.value
    assert _untimed(shown["status"]) == _untimed(expected.status.value), shown["status"]
    assert _svg_elements(shown["chart"]) == _svg_elements(expected.chart.value), shown
    titles = [t for tag, _, t in _svg_elements(shown["chart"]) if tag.endswith("title")][1:]
    x, group = expected._labels()[:2]  # points are drawn curve by curve, along x
    curves = list(dict.fromkeys(r[group] for r in expected.result.rows))
    rows = sorted(expected.result.rows, key=lambda r: (curves.index(r[group]), r[x]))
    assert all(
        f"{r['hits']:,} of {r['trials']:,} trials, estimate {r['p']:.4g}" in t
        for r, t in zip(rows, titles, strict=True)
    ), titles
    reset = shown["sweep"] == "reset"
    assert shown["disabled"] == {
        "estimate": False,
        "ISN policy": reset,
        "reconnect (s)": reset,
        "timestamps (PAWS)": reset,
        "TIME_WAIT (MSL)": not reset,
        "trials": False,
        "seed": False,
    }, shown["disabled"]
    shown["trials_per_point"] = expected.trials_per_point
    return shown


# Armed before a control of the sweep panel is moved: window.courseChartRedraw becomes the
# milliseconds from the event the control acts on (a change, a click, Enter in a number
# field), as the browser timed it, to the chart redrawn in the page.
CHART_REDRAW_JS = """el => {
  const chart = () => {
    const h = [...el.querySelectorAll('.widget-html-content')];
    return h.length > 1 ? h[1].innerHTML : null;
  };
  const before = chart();
  const events = ['change', 'click', 'keydown'];
  let t0 = null;
  const mark = () => { if (t0 === null) t0 = performance.now(); };
  events.forEach(e => el.addEventListener(e, mark, true));
  window.courseChartRedraw = new Promise((done, fail) => {
    const seen = new MutationObserver(() => {
      if (t0 !== null && chart() !== before) {
        seen.disconnect();
        events.forEach(e => el.removeEventListener(e, mark, true));
        done(performance.now() - t0);
      }
    });
    seen.observe(el, {subtree: true, childList: true, characterData: true});
    setTimeout(() => fail(new Error('the chart was not redrawn within 30 s')), 30000);
  });
}"""


def _drive_sweep_explorer(page, panel, problems) -> list:
    """Move each control the estimate uses (dropdown, multiple choice, checkbox, number
    fields); after each, the chart must have changed and equal the chart computed here.
    Returns the milliseconds from each change to the redrawn chart, timed in the browser."""
    first = _check_sweep(page, panel)
    assert first["trials_per_point"] < int(first["trials"])  # fewer trials, and said so
    assert "asked: without numpy" in _plain(first["status"])
    problems += _overlaps(panel.evaluate(SVG_BOXES_JS))
    start = first["sweep"]
    other = "old-duplicate" if start == "provoked-reset" else "provoked-reset"

    def select(label):
        return _field(panel, label, "dropdown").locator("select")

    def choose(label, options):
        return (
            panel.locator(f".widget-select-multiple:has(label:text-is('{label}'))")
            .first.locator("select")
            .select_option(label=options)
        )

    def number(label, value):
        field = _field(panel, label, "text").locator("input")
        field.fill(value)
        field.press("Enter")

    steps = [
        ("estimate: reset", lambda: select("estimate").select_option("reset")),
        ("TIME_WAIT (MSL): 0.0 and 2.0", lambda: choose("TIME_WAIT (MSL)", ["0.0", "2.0"])),
        (f"estimate: {other}", lambda: select("estimate").select_option(other)),
        ("timestamps on", lambda: _field(panel, "timestamps (PAWS)", "checkbox").locator("input").click()),
        ("timestamps off", lambda: _field(panel, "timestamps (PAWS)", "checkbox").locator("input").click()),
        ("ISN policy: fixed", lambda: choose("ISN policy", ["fixed"])),
        ("trials: 300", lambda: number("trials", "300")),
        ("seed: 5", lambda: number("seed", "5")),
        ("reconnect (s): 12", lambda: number("reconnect (s)", "12")),
        (f"estimate: {start}", lambda: select("estimate").select_option(start)),
    ]
    times = []
    for what, move in steps:
        before = panel.evaluate(SWEEP_STATE_JS)["chart"]
        panel.evaluate(CHART_REDRAW_JS)
        move()
        times.append(page.evaluate("() => window.courseChartRedraw"))
        shown = _check_sweep(page, panel)
        assert _svg_elements(shown["chart"]) != _svg_elements(before), what
        problems += _overlaps(panel.evaluate(SVG_BOXES_JS))
    assert shown["trials"] == "300" and shown["trials_per_point"] == 300
    assert shown["isn"] == ["fixed"] and shown["seed"] == "5" and shown["reconnect"] == "12"
    return times


def _fail_on(problems, what):
    if problems:
        pytest.fail(f"{what}:\n  " + "\n  ".join(sorted(set(problems))[:40]), pytrace=False)


def _spread(ms) -> str:
    """Median, 95th percentile (nearest rank) and maximum of milliseconds."""
    ordered = sorted(ms)
    p95 = ordered[math.ceil(0.95 * len(ordered)) - 1]
    return f"median {statistics.median(ordered):.0f} ms, p95 {p95:.0f} ms, max {ordered[-1]:.0f} ms"


def _report(results, redraws, sweep_redraws=()):
    load, cores = os.getloadavg()[0], os.cpu_count()
    lines = [
        "Live panels, measured in headless Chromium against a local server "
        f"(every other host refused; load average {load:.1f} on {cores} cores):"
    ]
    for kind in ("cold", "warm"):
        for page_name, call, facts in results.get(kind, []):
            phases = json.loads(facts["phases"])
            if phases.get("runtime_already_running"):
                lines.append(
                    f"  {kind}: {page_name} {call}: live {facts['seconds']:.2f} s after "
                    "the click (Python already running for another panel of the page)"
                )
                continue
            lines.append(
                f"  {kind}: {page_name} {call}: live {facts['seconds']:.2f} s after the "
                f"click ({facts['bytes'] / 1e6:.1f} MB of runtime and packages); seconds "
                f"from the click: {phases}"
            )
    if redraws:
        lines.append(f"  slider step to redraw ({len(redraws)} steps): " + _spread(redraws))
    if sweep_redraws:
        lines.append(
            f"  sweep panel, control change to redrawn chart ({len(sweep_redraws)} changes, "
            "plain-Python sweeps of up to "
            + ", ".join(f"{n:,} ({e})" for e, n in SweepExplorer.PYTHON_TRIALS.items())
            + " simulated closes): "
            + _spread(sweep_redraws)
        )
    text = "\n".join(lines) + "\n"
    (ARTIFACTS / "live-panels.txt").write_text(text)
    print(text)


@pytest.mark.parametrize("width", [1280, 390])
@pytest.mark.parametrize(
    "page_name,call,shot",
    [
        ("notebooks/simulator.html", "sequence_explorer", "live-panel"),
        ("notebooks/why-2msl.html", "sweep_explorer", "live-sweep-panel"),
    ],
)
def test_screenshots_of_a_live_panel_and_its_pictures_fit(served_browser, width, page_name, call, shot):
    """A page with its panel live (the sequence explorer, the sweep explorer), photographed
    at a desktop and a phone width; at either, no control is cut off and no SVG text box
    overlaps another."""
    b, base = served_browser
    reader = Reader(b, base, width=width)
    page = reader.open(page_name)
    reader.make_live(page, call)
    panel = _live(page, call)
    panel.scroll_into_view_if_needed()
    _fail_on(_overlaps(panel.evaluate(SVG_BOXES_JS)), f"SVG text boxes at {width} px")
    clipped = panel.evaluate("""el => { const r = el.getBoundingClientRect();
      return [...el.querySelectorAll('input, select, .noUi-target, label')].filter(c => {
        const b = c.getBoundingClientRect();
        return b.width > 0 && (b.left < r.left - 1 || b.right > r.right + 1); })
        .map(c => c.outerHTML.slice(0, 80)); }""")
    assert not clipped, clipped
    # The pictures keep their size and scroll sideways on a phone: text stays legible.
    smallest = panel.evaluate("""el => Math.min(...[...el.querySelectorAll('svg text')]
        .map(t => parseFloat(getComputedStyle(t).fontSize) *
                  t.closest('svg').getBoundingClientRect().width /
                  t.closest('svg').viewBox.baseVal.width))""")
    assert smallest >= 10, f"SVG text drawn {smallest:.1f} px high at {width} px wide"
    page.screenshot(path=str(ARTIFACTS / f"{shot}-{width}.png"), full_page=False)
    assert not reader.refused, reader.refused
    reader.close()
