"""The API's own pages: ``GET /`` (an index of links), ``/docs`` (Swagger UI) and ``/redoc``.

Their scripts, styles and icon are served by the API itself from ``/docs-static``: the files
of the ``fastapi-offline`` package (part of the ``[api]`` extra), so the pages work on a host
without access to a CDN. The pages are behind the API token like every route but
``/healthz``.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

#: Where the pages' scripts and styles are served.
STATIC_URL = "/docs-static"
#: The links of ``GET /``.
INDEX = {"docs": "/docs", "redoc": "/redoc", "openapi": "/openapi.json", "health": "/healthz",
         "metrics": "/metrics"}


def install_docs(app: FastAPI) -> None:
    """Serve ``/``, ``/docs``, ``/redoc`` and their assets on ``app`` (created with
    ``docs_url=None, redoc_url=None``)."""
    static = resources.files("fastapi_offline").joinpath("static")
    app.mount(STATIC_URL, StaticFiles(directory=str(static)), name="docs-static")
    redirect_url = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    @app.get("/", include_in_schema=False)
    async def index(request: Request) -> dict[str, Any]:
        """What this server is and where its pages are (for curl and browsers alike)."""
        root = request.scope.get("root_path", "")
        return {"name": app.title, "version": app.version,
                **{key: f"{root}{path}" for key, path in INDEX.items()}}

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}{redirect_url}",
            swagger_js_url=f"{root}{STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC_URL}/favicon.png",
            swagger_ui_parameters=app.swagger_ui_parameters)

    @app.get(redirect_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{STATIC_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{STATIC_URL}/favicon.png", with_google_fonts=False)
