"""Debian's Chromium driven by Playwright (it cannot download a browser here), for the tests that look at a
page as a reader does. One place for where Chromium is, the skip when it or Playwright is missing, and
the launch options."""

from __future__ import annotations

import contextlib
import os

import pytest

#: Chromium's path: Debian's package (apt-get install -y chromium), or DELTAPROP_CHROMIUM.
CHROMIUM = os.environ.get("DELTAPROP_CHROMIUM", "/usr/bin/chromium")


def launch(playwright):
    """A headless Chromium (--disable-gpu: without a GPU in a container it hangs on screenshots)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=["--disable-gpu"])


@contextlib.contextmanager
def chromium_page(width: int = 1000, height: int = 900):
    """A fresh page of that viewport in Chromium, closed afterwards; the test is skipped, saying what to
    install, without Playwright or Chromium."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install -y chromium")
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()
