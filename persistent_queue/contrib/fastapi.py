"""FastAPI: an :class:`~persistent_queue.AsyncQueue` for an application's own endpoints.

::

    from fastapi import FastAPI
    from persistent_queue.contrib.fastapi import AsyncQueueDep, queue_lifespan

    app = FastAPI(lifespan=queue_lifespan("data/queue.db"))

    @app.post("/signup")
    async def signup(email: str, aq: AsyncQueueDep) -> dict:
        job = await aq.enqueue("emails", {"to": email})
        return {"job": job.id}

``queue_lifespan`` opens one AsyncQueue when the application starts (``app.state.queue``) and
closes it when it stops; ``AsyncQueueDep`` (or ``Depends(get_async_queue)``) hands it to an
endpoint. An application with a lifespan of its own passes it as ``then=``: it runs inside,
with the queue already open. Needs FastAPI (the ``api`` extra).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request

from ..aio import AsyncQueue
from ..errors import InvalidArgument
from ..storage import Backend

__all__ = ["STATE_KEY", "AsyncQueueDep", "get_async_queue", "queue_lifespan"]

#: The attribute of ``app.state`` holding the AsyncQueue.
STATE_KEY = "queue"

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[Any]]


def queue_lifespan(db: str | os.PathLike[str] | Backend, *, then: Lifespan | None = None,
                   **options: Any) -> Lifespan:
    """A FastAPI ``lifespan`` opening ``AsyncQueue(db, **options)`` for the application's
    lifetime (``app.state.queue``), then running ``then`` (the application's own lifespan)
    inside it. Options are ``AsyncQueue``'s (``threads``) and ``Queue``'s."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with AsyncQueue(db, **options) as aq:
            setattr(app.state, STATE_KEY, aq)
            try:
                if then is None:
                    yield None
                else:
                    async with then(app) as state:
                        yield state
            finally:
                delattr(app.state, STATE_KEY)

    return lifespan


def get_async_queue(request: Request) -> AsyncQueue:
    """The application's AsyncQueue (a FastAPI dependency); ``InvalidArgument`` when the
    application was not created with ``lifespan=queue_lifespan(...)``."""
    aq = getattr(request.app.state, STATE_KEY, None)
    if not isinstance(aq, AsyncQueue):
        raise InvalidArgument("this application has no AsyncQueue: create it with "
                              "FastAPI(lifespan=queue_lifespan(db))")
    return aq


#: ``aq: AsyncQueueDep`` in an endpoint's parameters gives it the application's AsyncQueue.
AsyncQueueDep = Annotated[AsyncQueue, Depends(get_async_queue)]
