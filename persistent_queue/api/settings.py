"""The API server's settings: command-line flags > ``PQ_*`` environment > defaults.

``PQ_DB``, ``PQ_DURABILITY``, ``PQ_API_HOST``, ``PQ_API_PORT``, ``PQ_API_MAX_BODY`` (bytes),
``PQ_API_MAX_WAIT`` (seconds), ``PQ_DEFAULT_QUEUE`` (the queue of requests that name none,
default ``default``), ``PQ_APP`` (``module:attr`` naming the Queue whose ``@q.task`` functions
``POST /tasks/{name}`` enqueues), ``PQ_LOG_LEVEL``; the secrets ``PQ_API_TOKEN`` (full access) and
``PQ_API_READ_TOKEN`` (GET routes only) come from the environment only.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NoReturn

from .. import config
from ..config import Durability
from ..errors import InvalidArgument, QueueError
from ..validation import queue_name

#: Accepted values of --log-level / PQ_LOG_LEVEL (any case in the environment).
LOG_LEVELS = ["critical", "error", "warning", "info", "debug"]


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """Everything the API server is started with (see the module docstring)."""

    host: str
    port: int
    db: str
    durability: Durability
    max_body: int | None
    max_wait: float
    default_queue: str
    log_level: str
    token: str | None
    read_token: str | None
    app: str | None = None


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are :class:`InvalidArgument` (the caller decides how to exit)."""

    def error(self, message: str) -> NoReturn:
        raise InvalidArgument(message)


def _number(env: Mapping[str, str], name: str, default: float,
            kind: type[int] | type[float]) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return kind(raw)
    except ValueError:
        raise InvalidArgument(f"{name}={raw!r} is not a valid {kind.__name__}") from None


def parse_args(argv: Sequence[str] | None = None, *, prog: str | None = None,
               env: Mapping[str, str] | None = None) -> ApiSettings:
    """The settings from ``argv`` (default ``sys.argv[1:]``) and ``env`` (default
    ``os.environ``); on a bad one, argparse's usage and ``prog: error: ...`` on stderr, exit 2."""
    environ = os.environ if env is None else env
    parser = _Parser(prog=prog, description="persistent-queue HTTP API (FastAPI + uvicorn)")
    try:
        return _settings(parser, sys.argv[1:] if argv is None else argv, environ)
    except InvalidArgument as exc:
        parser.print_usage(sys.stderr)
        parser.exit(2, f"{parser.prog}: error: {exc}\n")


def settings_from_env(env: Mapping[str, str] | None = None) -> ApiSettings:
    """The settings from the environment alone (``uvicorn persistent_queue.api:app``).

    Raises:
        InvalidArgument: a ``PQ_*`` variable holds a bad value (the message names it).
    """
    parser = _Parser(prog="persistent_queue.api:app")
    return _settings(parser, [], os.environ if env is None else env)


def _settings(parser: _Parser, argv: Sequence[str], env: Mapping[str, str]) -> ApiSettings:
    parser.add_argument("--host", default=env.get("PQ_API_HOST", "127.0.0.1"),
                        help="interface to bind (PQ_API_HOST; default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=int(_number(env, "PQ_API_PORT", 8000, int)),
                        help="TCP port, 0 for any free one (PQ_API_PORT; default 8000)")
    parser.add_argument("--db", default=env.get("PQ_DB", config.DEFAULT_DB_PATH),
                        help="database file or postgresql:// URL (PQ_DB; default data/queue.db)")
    parser.add_argument("--durability", choices=["full", "normal"],
                        default=env.get("PQ_DURABILITY", "full"),
                        help="fsync policy (PQ_DURABILITY; default full)")
    parser.add_argument("--max-body", type=int,
                        default=int(_number(env, "PQ_API_MAX_BODY", 0, int)) or None,
                        help="body limit, bytes (PQ_API_MAX_BODY; default 1 MiB + 64 KiB)")
    parser.add_argument("--max-wait", type=float,
                        default=_number(env, "PQ_API_MAX_WAIT", 20.0, float),
                        help="longest long poll in seconds (PQ_API_MAX_WAIT; default 20)")
    parser.add_argument("--default-queue", default=env.get("PQ_DEFAULT_QUEUE") or "default",
                        help="queue of /send, /enqueue, /receive and /dequeue requests that name "
                             "none (PQ_DEFAULT_QUEUE; default 'default')")
    parser.add_argument("--app", default=env.get("PQ_APP") or None,
                        help="module:attr naming a Queue whose @q.task functions POST "
                             "/tasks/{name} enqueues (PQ_APP; default none: no tasks)")
    parser.add_argument("--log-level", default=env.get("PQ_LOG_LEVEL", "info").lower(),
                        choices=LOG_LEVELS, help="(PQ_LOG_LEVEL; default info)")
    args = parser.parse_args(list(argv))
    if not 0 <= args.port <= 65535:
        raise InvalidArgument(f"--port must be 0-65535, not {args.port}")
    if args.max_body is not None and args.max_body < 1024:
        raise InvalidArgument("--max-body must be at least 1024 bytes")
    if not 0 <= args.max_wait <= 3600:
        raise InvalidArgument("--max-wait must be between 0 and 3600 seconds")
    if args.log_level not in LOG_LEVELS:
        raise InvalidArgument(f"PQ_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, "
                              f"not {args.log_level!r}")
    if args.durability not in ("full", "normal"):
        raise InvalidArgument(f"PQ_DURABILITY must be full or normal, not {args.durability!r}")
    try:
        queue_name(args.default_queue, what="default queue")
    except QueueError as exc:
        raise InvalidArgument(f"--default-queue / PQ_DEFAULT_QUEUE: {exc}") from None
    token = env.get("PQ_API_TOKEN") or None
    read_token = env.get("PQ_API_READ_TOKEN") or None
    if read_token and not token:
        raise InvalidArgument("PQ_API_READ_TOKEN needs PQ_API_TOKEN to be set too")
    return ApiSettings(host=args.host, port=args.port, db=args.db, durability=args.durability,
                       max_body=args.max_body, max_wait=args.max_wait,
                       default_queue=args.default_queue, log_level=args.log_level,
                       token=token, read_token=read_token, app=args.app or None)
