"""``GET /`` and the API's documentation pages, whose assets the API serves itself (no CDN)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from persistent_queue.api import create_app

#: What a page loads: script sources, stylesheet and icon links.
ASSET = re.compile(r"""<(?:script|link)\b[^>]*?\b(?:src|href)=["']([^"']+)["']""")
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


@pytest.fixture
def app_client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(tmp_path / "q.db")) as client:
        yield client


def test_the_index_points_to_the_docs(app_client: TestClient) -> None:
    index = app_client.get("/")
    assert index.status_code == 200
    assert index.json() == {
        "name": "persistent-queue", "version": index.json()["version"], "docs": "/docs",
        "redoc": "/redoc", "openapi": "/openapi.json", "health": "/healthz",
        "metrics": "/metrics"}
    for link in ("/docs", "/redoc", "/openapi.json", "/healthz", "/metrics"):
        assert app_client.get(link).status_code == 200, link


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_load_nothing_from_outside(app_client: TestClient, page: str) -> None:
    html = app_client.get(page)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "https://" not in html.text and "http://" not in html.text
    assets = ASSET.findall(html.text)
    assert assets and all(url.startswith("/docs-static/") for url in assets), assets
    for url in assets:
        served = app_client.get(url)
        assert served.status_code == 200, url
        expected = CONTENT_TYPES[Path(url).suffix]
        assert served.headers["content-type"].startswith(expected), (url, served.headers)
        assert len(served.content) > 1000


def test_swagger_ui_reads_this_apps_openapi(app_client: TestClient) -> None:
    html = app_client.get("/docs").text
    assert "url: '/openapi.json'" in html
    assert app_client.get("/docs/oauth2-redirect").status_code == 200


def test_the_docs_are_behind_the_token(tmp_path: Path) -> None:
    with TestClient(create_app(tmp_path / "q.db", token="secret")) as client:
        assert client.get("/docs").status_code == 401
        assert client.get("/").status_code == 401
        assert client.get("/healthz").status_code == 200
        assert client.get("/docs", headers={"Authorization": "Bearer secret"}).status_code == 200
