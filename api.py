"""Serve the queue over HTTP: ``python api.py [--host 127.0.0.1] [--port 8000] [--db PATH]``.

Settings: flag > environment > default. ``PQ_DB``, ``PQ_API_HOST``, ``PQ_API_PORT``,
``PQ_API_MAX_BODY`` (bytes), ``PQ_API_MAX_WAIT`` (seconds), ``PQ_DEFAULT_QUEUE`` (the queue of
requests that name none, default ``default``); the secrets ``PQ_API_TOKEN`` (full
access) and ``PQ_API_READ_TOKEN`` (GET routes only) come from the environment only.
Exit code 2 on bad configuration.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from persistent_queue import QueueError
from persistent_queue.config import DEFAULT_DB_PATH
from persistent_queue.postgres_url import mask_url
from persistent_queue.validation import queue_name

logger = logging.getLogger("persistent_queue.api.server")


def _env_number(parser: argparse.ArgumentParser, name: str, default: float,
                kind: type[int] | type[float]) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return kind(raw)
    except ValueError:
        parser.error(f"{name}={raw!r} is not a valid {kind.__name__}")
    raise AssertionError("unreachable")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags with their ``PQ_*`` environment fallbacks, validated."""
    parser = argparse.ArgumentParser(description="persistent-queue HTTP API (FastAPI + uvicorn)")
    parser.add_argument("--host", default=os.environ.get("PQ_API_HOST", "127.0.0.1"),
                        help="interface to bind (PQ_API_HOST; default 127.0.0.1)")
    parser.add_argument("--port", type=int,
                        default=int(_env_number(parser, "PQ_API_PORT", 8000, int)),
                        help="TCP port (PQ_API_PORT; default 8000)")
    parser.add_argument("--db", default=os.environ.get("PQ_DB", DEFAULT_DB_PATH),
                        help="database file or postgresql:// URL (PQ_DB; default data/queue.db)")
    parser.add_argument("--durability", choices=["full", "normal"],
                        default=os.environ.get("PQ_DURABILITY", "full"),
                        help="fsync policy (PQ_DURABILITY; default full)")
    parser.add_argument("--max-body", type=int,
                        default=int(_env_number(parser, "PQ_API_MAX_BODY", 0, int)) or None,
                        help="body limit, bytes (PQ_API_MAX_BODY; default 1 MiB + 64 KiB)")
    parser.add_argument("--max-wait", type=float,
                        default=_env_number(parser, "PQ_API_MAX_WAIT", 20.0, float),
                        help="longest long poll in seconds (PQ_API_MAX_WAIT; default 20)")
    parser.add_argument("--default-queue", default=os.environ.get("PQ_DEFAULT_QUEUE") or "default",
                        help="queue of /send, /enqueue, /receive and /dequeue requests that name "
                             "none (PQ_DEFAULT_QUEUE; default 'default')")
    parser.add_argument("--log-level", default=os.environ.get("PQ_LOG_LEVEL", "info"),
                        choices=["critical", "error", "warning", "info", "debug"])
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be 0-65535, not {args.port}")
    if args.max_body is not None and args.max_body < 1024:
        parser.error("--max-body must be at least 1024 bytes")
    if not 0 <= args.max_wait <= 3600:
        parser.error("--max-wait must be between 0 and 3600 seconds")
    try:
        queue_name(args.default_queue, what="default queue")
    except QueueError as exc:
        parser.error(f"--default-queue / PQ_DEFAULT_QUEUE: {exc}")
    args.token = os.environ.get("PQ_API_TOKEN") or None
    args.read_token = os.environ.get("PQ_API_READ_TOKEN") or None
    if args.read_token and not args.token:
        parser.error("PQ_API_READ_TOKEN needs PQ_API_TOKEN to be set too")
    return args


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    """Open the queue and serve it until SIGTERM/SIGINT."""
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import uvicorn

    from persistent_queue import Queue
    from persistent_queue.api import create_app

    try:
        queue = Queue(args.db, durability=args.durability)
    except QueueError as exc:
        print(f"error: cannot open {mask_url(args.db)}: {exc}", file=sys.stderr)
        return 2
    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.token:
        logger.warning("binding %s without PQ_API_TOKEN: anyone who can reach it has full access",
                       args.host)
    app = create_app(queue, token=args.token, read_token=args.read_token,
                     max_body_bytes=args.max_body, max_wait=args.max_wait,
                     default_queue=args.default_queue)
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal under the
    # handlers found at start-up: make those a clean exit (code 0) rather than a kill.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _exit_cleanly)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level,
                    proxy_headers=False, server_header=False,
                    timeout_graceful_shutdown=int(args.max_wait) + 5)
    finally:
        queue.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
