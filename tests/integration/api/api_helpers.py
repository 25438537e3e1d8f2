"""Helpers for the HTTP API tests."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient


def claim(client: TestClient, queue: str = "emails", **extra: Any) -> dict[str, Any]:
    """Claim a job over HTTP and return it (fails the test on anything but 200)."""
    response = client.post("/dequeue", json={"queue": queue, **extra})
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    return job


def lease(job: dict[str, Any]) -> dict[str, Any]:
    """The ``{id, lease_token}`` body of a claimed job."""
    return {"id": job["id"], "lease_token": job["lease_token"]}
