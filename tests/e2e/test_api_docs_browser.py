"""The API's /docs in Debian's headless Chromium with every request off this host refused: the
Swagger UI still renders the operations, from the files the API serves itself."""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.browser_support import browser_page, require_chromium
from tests.support import ROOT, ServedApi

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_docs_render_the_operations_without_the_network(
        tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    require_chromium()
    api = ServedApi([sys.executable, str(ROOT / "api.py"), "--port", "0", "--db",
                     str(tmp_path / "q.db"), "--log-level", "info"],
                    log=tmp_path / "api.log", cwd=tmp_path, env=subprocess_env)
    refused: list[str] = []

    def local_only(route: object, request: object) -> None:
        url = request.url  # type: ignore[attr-defined]
        if urlsplit(url).hostname == "127.0.0.1":
            route.continue_()  # type: ignore[attr-defined]
        else:
            refused.append(url)
            route.abort()  # type: ignore[attr-defined]

    try:
        base = api.wait_listening()
        with browser_page() as page:
            page.route("**/*", local_only)
            page.goto(f"{base}/docs")
            page.wait_for_selector(".opblock-summary-path", timeout=60_000)
            paths = page.locator(".opblock-summary-path").all_inner_texts()
            title = page.locator(".information-container").inner_text(timeout=30_000)
    finally:
        assert api.stop(timeout=90) == 0, api.text()[-3000:]
    assert "persistent-queue" in title
    assert "/healthz" in " ".join(paths) and len(paths) > 20
    assert refused == []
