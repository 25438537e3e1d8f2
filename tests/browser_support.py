"""Debian's headless Chromium for the browser tests: installed when missing (as root), or the
test skipped with the reason; a page of it driven by Playwright (the test extra)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def install_chromium() -> str | None:
    """Install Debian's chromium when missing; the reason it is unavailable, or None."""
    if Path(CHROMIUM).exists():
        return None
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        return "chromium is not installed and apt-get cannot install it (not root on Debian)"
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=1200,
                              env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        if done.returncode != 0:
            return f"installing chromium failed: {' '.join(command)}: {done.stderr[-300:]}"
    return None if Path(CHROMIUM).exists() else "apt-get installed no /usr/bin/chromium"


def require_chromium() -> str:
    """Chromium's path, with Playwright importable; the test is skipped otherwise."""
    reason = install_chromium()
    if reason:
        pytest.skip(reason)
    pytest.importorskip("playwright.sync_api", reason="playwright (test extra) is missing")
    return CHROMIUM


@contextmanager
def browser_page(timeout_ms: float | None = None, **page_options: Any) -> Iterator[Any]:
    """A new page of headless Chromium (``page_options`` as Playwright's ``new_page``), the
    browser closed on leaving; with ``timeout_ms``, the page's and ``expect``'s timeout."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                             headless=True)
        try:
            page = browser.new_page(**page_options)
            if timeout_ms is not None:
                page.set_default_timeout(timeout_ms)
                expect.set_options(timeout=timeout_ms)
            yield page
        finally:
            browser.close()
