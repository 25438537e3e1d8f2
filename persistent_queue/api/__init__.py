"""The HTTP API of persistent-queue (FastAPI): ``create_app(queue_or_path, token=...)``.

Run it with ``pq api`` (flags and ``PQ_*`` variables), or with any ASGI server as
``uvicorn persistent_queue.api:app``: ``app`` is built on first access from ``PQ_DB``,
``PQ_DURABILITY``, ``PQ_API_TOKEN``, ``PQ_API_READ_TOKEN``, ``PQ_API_MAX_BODY``,
``PQ_API_MAX_WAIT`` and ``PQ_DEFAULT_QUEUE`` (importing this package opens no database).
OpenAPI docs are at ``/docs``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .factory import create_app

if TYPE_CHECKING:
    from fastapi import FastAPI

    app: FastAPI

__all__ = ["create_app"]  # and `app`, built on first access


def __getattr__(name: str) -> Any:
    """``app``: the app configured from the environment, built once on first access."""
    if name == "app":
        from .server import app_from_env

        built = globals()["app"] = app_from_env()
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
