"""persistent_queue.contrib.fastapi: an application's own endpoints enqueue and claim through
the AsyncQueue its lifespan opens."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from persistent_queue import AsyncQueue, InvalidArgument, Queue
from persistent_queue.contrib.fastapi import AsyncQueueDep, queue_lifespan


def make_app(db: Path | str, seen: list[str]) -> FastAPI:
    @asynccontextmanager
    async def own(app: FastAPI) -> AsyncIterator[None]:
        seen.append(f"open {type(app.state.queue).__name__}")
        yield
        seen.append("closing")

    app = FastAPI(lifespan=queue_lifespan(db, then=own, durability="normal"))

    @app.post("/signup")
    async def signup(email: str, aq: AsyncQueueDep) -> dict[str, Any]:
        job = await aq.enqueue("emails", {"to": email})
        return {"job": job.id}

    @app.get("/next")
    async def next_email(aq: AsyncQueueDep, wait: float = 0) -> dict[str, Any]:
        job = await aq.dequeue("emails", wait=wait)
        if job is None:
            return {"job": None}
        await aq.ack(job)
        return {"job": job.id, "to": job.payload["to"]}

    return app


def test_endpoints_use_the_lifespans_async_queue(db_path: Path | str) -> None:
    seen: list[str] = []
    app = make_app(db_path, seen)
    with TestClient(app) as client:
        assert seen == ["open AsyncQueue"]
        aq = app.state.queue
        assert isinstance(aq, AsyncQueue)
        created = client.post("/signup", params={"email": "a@b.c"}).json()
        assert client.get("/next", params={"wait": 5}).json() == {"job": created["job"],
                                                                  "to": "a@b.c"}
        assert client.get("/next").json() == {"job": None}
    assert seen == ["open AsyncQueue", "closing"]
    assert not hasattr(app.state, "queue")
    with pytest.raises(InvalidArgument, match="closed"):
        asyncio.run(aq.enqueue("emails", 1))
    with Queue(db_path) as q:
        assert q.stats("emails").done == 1


def test_an_app_without_the_lifespan_is_told_how_to_get_one(tmp_path: Path) -> None:
    app = FastAPI()

    @app.get("/x")
    async def x(aq: AsyncQueueDep) -> None:
        return None

    with TestClient(app) as client, pytest.raises(InvalidArgument, match="queue_lifespan"):
        client.get("/x")
