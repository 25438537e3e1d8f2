"""The HTTP API of persistent-queue (FastAPI): ``create_app(queue_or_path, token=...)``.

``api.py`` at the top of the project runs it with uvicorn; OpenAPI docs are at ``/docs``.
"""

from __future__ import annotations

from .app import create_app

__all__ = ["create_app"]
