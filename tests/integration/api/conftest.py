"""Fixtures for the HTTP API tests: an app over a real database under tmp_path."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from persistent_queue import Queue
from persistent_queue.api import create_app


@pytest.fixture
def client(queue: Queue) -> Iterator[TestClient]:
    """A client of an app serving the fake-clock ``queue`` fixture."""
    with TestClient(create_app(queue)) as test_client:
        yield test_client

