"""What the site's browser tests share: the built site served on 127.0.0.1 and one headless
Chromium (Playwright driving the system's Chromium, see scripts/site_weight.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import site_weight  # noqa: E402

HTML = Path(
    os.environ.get("TIMEWAIT_SITE_HTML") or os.environ.get("TIMEWAIT_SITE") or ROOT / "_build" / "html"
)
ARTIFACTS = ROOT / "_build" / "site-test"


@pytest.fixture(scope="module")
def served_browser():
    """(browser, base URL of the served site)."""
    if not (HTML / "index.html").exists():
        pytest.fail(f"no built site in {HTML}: `make test-site` builds it", pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip(f"the Python package playwright is missing; {site_weight.INSTALL_HINT}")
    if site_weight.find_chromium() is None:
        pytest.skip(f"no Chromium found; {site_weight.INSTALL_HINT}")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with site_weight.serve(HTML) as base, sync_playwright() as p:
        browser = site_weight.launch(p)
        try:
            yield browser, base
        finally:
            browser.close()
