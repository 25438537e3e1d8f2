"""The app factory: :func:`create_app` serves one :class:`~persistent_queue.Queue` over HTTP."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
from fastapi import FastAPI, Request

from .. import __version__, config, tracing, validation
from ..queue import Queue
from ..storage.sqlite.dialect import SQLiteDialect
from ..tasks import TaskRegistry
from .docs import install_docs
from .errors import install_error_handlers
from .metrics import ApiMetrics
from .middleware import BearerAuthMiddleware, BodyLimitMiddleware

#: Room for the request envelope (queue name, headers, options) around a maximal payload.
ENVELOPE_BYTES = 64 * 1024
#: Longest long poll a client may ask for, in seconds (as SQS's 20 s).
DEFAULT_MAX_WAIT = 20.0
#: Threads available to long polls, apart from the pool that serves every other request.
LONG_POLL_THREADS = 64
#: The queue of ``/send``, ``/enqueue``, ``/receive`` and ``/dequeue`` when a request names none.
DEFAULT_QUEUE = "default"


@dataclass
class ApiState:
    """What the routes share: the queue, metrics and limits."""

    queue: Queue
    metrics: ApiMetrics
    max_wait: float
    integrity_interval: float
    min_free_bytes: int
    default_queue: str = DEFAULT_QUEUE
    #: The tasks ``POST /tasks/{name}`` enqueues (``pq api --app``); None: no tasks.
    registry: TaskRegistry | None = None
    integrity_cache: dict[str, Any] = field(default_factory=dict)
    _limiter: anyio.CapacityLimiter | None = None

    @property
    def long_poll_limiter(self) -> anyio.CapacityLimiter:
        """Threads for long polls (created in the event loop on first use)."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(LONG_POLL_THREADS)
        return self._limiter


def share_commits(queue: Queue) -> None:
    """Group-commit the writes of a queue the server opened, in normal durability too.

    Request handlers write from many threads at once. Without group commit they wait for
    SQLite's write lock in its busy handler, which sleeps 1-100 ms at a time: POST /enqueue
    from 32 clients had a p99 of 1.2 s, and 0.2 s with group commit, at 1.3-1.5x the
    requests/s (bench/http.py). Full durability groups already; PostgreSQL does not group.
    """
    dialect = getattr(queue.backend, "dialect", None)
    if isinstance(dialect, SQLiteDialect) and str(dialect.path) != ":memory:":
        dialect.group_commit = True


def get_state(request: Request) -> ApiState:
    """The app's :class:`ApiState` (a FastAPI dependency)."""
    state: ApiState = request.app.state.api
    return state


def get_queue(request: Request) -> Queue:
    """The app's queue (a FastAPI dependency)."""
    return get_state(request).queue


def create_app(
    queue_or_path: Queue | str | os.PathLike[str],
    *,
    token: str | None = None,
    read_token: str | None = None,
    max_body_bytes: int | None = None,
    max_wait: float = DEFAULT_MAX_WAIT,
    integrity_interval: float = 300.0,
    min_free_bytes: int = 64 * 1024 * 1024,
    default_queue: str = DEFAULT_QUEUE,
    durability: config.Durability = config.DEFAULT_DURABILITY,
    registry: TaskRegistry | None = None,
) -> FastAPI:
    """A FastAPI app serving a queue.

    Args:
        queue_or_path: a :class:`Queue` (the caller closes it) or a database path (the app
            opens the queue and closes it on shutdown).
        token: when set, every route but ``/healthz`` needs ``Authorization: Bearer <token>``.
        read_token: optionally, a second token that may only use read (GET) routes.
        max_body_bytes: request body limit (default: the queue's payload limit + 64 KiB).
        max_wait: longest long poll (``wait``) a client may ask for, in seconds.
        integrity_interval: ``/healthz`` re-runs the integrity check at most this often.
        min_free_bytes: ``/healthz`` fails when the database's disk has less free space.
        default_queue: the queue of enqueues and claims that name none (``InvalidQueueName``
            if it is no valid name).
        durability: the fsync policy of the queue the app opens from a path.
        registry: the tasks ``POST /tasks/{name}`` may enqueue (a Queue's ``tasks``, as
            ``pq api --app module:q`` loads them); their jobs are stored in this app's queue.
    """
    from .fast_path import FastEnqueueMiddleware
    from .routes import dead_letters, jobs, messages, queues, system, tasks, workflows

    if read_token and not token:
        raise ValueError("a read-only token needs a full token too")
    validation.queue_name(default_queue, what="default queue")
    owned = not isinstance(queue_or_path, Queue)
    queue = (queue_or_path if isinstance(queue_or_path, Queue)
             else Queue(queue_or_path, durability=durability))
    if owned:
        share_commits(queue)
    limit = max_body_bytes or queue.max_payload_bytes + ENVELOPE_BYTES

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if owned:
                queue.close()

    app = FastAPI(
        title="persistent-queue",
        version=__version__,
        description=(
            "A crash-safe job queue in one SQLite file. Claim a job with `/dequeue`, then "
            "`/ack`, `/nack`, `/extend` or `/requeue` it with its `id` and `lease_token`. "
            "Errors are `{\"error\": code, \"detail\": message}`."
        ),
        lifespan=lifespan,
        docs_url=None,  # served by install_docs, from local files
        redoc_url=None,
    )
    app.state.api = ApiState(
        queue=queue, metrics=ApiMetrics(queue), max_wait=min(max_wait, config.MAX_WAIT),
        integrity_interval=integrity_interval, min_free_bytes=min_free_bytes,
        default_queue=default_queue, registry=registry,
    )
    install_error_handlers(app)
    install_docs(app)
    for module in (messages, queues, jobs, tasks, dead_letters, workflows, system):
        app.include_router(module.router)
    # The last added runs first: authenticate before reading a body, then the fast path.
    app.add_middleware(FastEnqueueMiddleware, state=app.state.api)
    app.add_middleware(BodyLimitMiddleware, max_bytes=limit)
    if token:
        app.add_middleware(BearerAuthMiddleware, token=token, read_token=read_token)
    tracing.instrument_app(app)  # request spans, parents of the enqueue spans (if tracing)
    return app
