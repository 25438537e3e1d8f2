"""Serving the API: ``pq api`` (also ``api.py``) and ``uvicorn persistent_queue.api:app``.

Settings come from flags and ``PQ_*`` variables (:mod:`.settings`). Exit codes of ``pq api``:
0 stopped by SIGTERM/SIGINT, 2 bad configuration or a database that cannot be opened.

Every log record, uvicorn's included, is one JSON line on stdout (:func:`log_config`); an
access line carries ``client``, ``method``, ``path``, ``status`` and ``http_version``.
"""

from __future__ import annotations

import logging
import logging.config
import signal
import sys
from collections.abc import Sequence
from types import FrameType
from typing import Any

from fastapi import FastAPI

from ..errors import QueueError
from ..logs import JsonFormatter
from ..queue import Queue
from ..storage.postgres.url import mask_url
from ..tasks import TaskRegistry
from .factory import create_app, share_commits
from .settings import ApiSettings, parse_args, settings_from_env

logger = logging.getLogger("persistent_queue.api.server")

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def load_registry(settings: ApiSettings) -> TaskRegistry | None:
    """The tasks of ``--app``/``PQ_APP`` (None without it); the current directory is
    importable, as for ``pq worker --app``. ``InvalidArgument`` when it cannot be loaded."""
    if not settings.app:
        return None
    from ..commands.process_options import import_from_cwd
    from ..worker_routing import load_app

    import_from_cwd()
    return load_app(settings.app)


def app_from_env() -> FastAPI:
    """The app of ``uvicorn persistent_queue.api:app``, configured from ``PQ_*`` variables.

    It opens the queue of ``PQ_DB`` (closed when the server shuts down) and imports the
    tasks of ``PQ_APP`` if set.

    Raises:
        InvalidArgument: a ``PQ_*`` variable holds a bad value (the message names it).
    """
    settings = settings_from_env()
    return create_app(settings.db, token=settings.token, read_token=settings.read_token,
                      max_body_bytes=settings.max_body, max_wait=settings.max_wait,
                      default_queue=settings.default_queue, durability=settings.durability,
                      registry=load_registry(settings))


class UvicornJsonFormatter(JsonFormatter):
    """The project's JSON lines for uvicorn's records: an access record's parts as fields,
    without uvicorn's ANSI-coloured copy of the message."""

    def format(self, record: logging.LogRecord) -> str:
        record.__dict__.pop("color_message", None)
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) \
                and len(record.args) == 5:
            client, method, path, version, status = record.args
            record.__dict__.update(client=client, method=method, path=path,
                                   http_version=version, status=status)
        return super().format(record)


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's ``log_config``: every record at ``level`` and above, uvicorn's and the
    app's, as one JSON object per line on stdout."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": UvicornJsonFormatter}},
        "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "json",
                                "stream": "ext://sys.stdout"}},
        "root": {"handlers": ["stdout"], "level": level.upper()},
        "loggers": {name: {"handlers": [], "level": level.upper(), "propagate": True}
                    for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
    }


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def serve(settings: ApiSettings) -> int:
    """Open the queue and serve it with uvicorn until SIGTERM/SIGINT; the exit code."""
    import uvicorn

    logging.config.dictConfig(log_config(settings.log_level))
    logging.captureWarnings(True)  # a library's warning is a JSON line too, not raw stderr
    try:
        registry = load_registry(settings)
    except QueueError as exc:
        print(f"error: --app {settings.app}: {exc}", file=sys.stderr)
        return 2
    try:
        queue = Queue(settings.db, durability=settings.durability)
    except QueueError as exc:
        print(f"error: cannot open {mask_url(settings.db)}: {exc}", file=sys.stderr)
        return 2
    share_commits(queue)
    if settings.host not in LOOPBACK and not settings.token:
        logger.warning("binding %s without PQ_API_TOKEN: anyone who can reach it has full access",
                       settings.host)
    app = create_app(queue, token=settings.token, read_token=settings.read_token,
                     max_body_bytes=settings.max_body, max_wait=settings.max_wait,
                     default_queue=settings.default_queue, registry=registry)
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal under the
    # handlers found at start-up: make those a clean exit (code 0) rather than a kill.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _exit_cleanly)
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level,
                    log_config=log_config(settings.log_level),
                    proxy_headers=False, server_header=False,
                    timeout_graceful_shutdown=int(settings.max_wait) + 5)
    finally:
        queue.close()
    return 0


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Parse flags and ``PQ_*`` variables (exit 2 on bad ones), then :func:`serve`."""
    return serve(parse_args(argv, prog=prog))
