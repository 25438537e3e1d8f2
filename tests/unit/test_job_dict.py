"""``Job.to_dict``: what ``dataclasses.asdict`` gave, sharing no list or dict with the job."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from persistent_queue.models import Job, JobState, Progress


def _asdict(job: Job) -> dict[str, Any]:
    data = dataclasses.asdict(job)
    data["state"] = job.state.value
    data["depends_on"] = list(job.depends_on)
    data["progress"] = None if job.progress is None else job.progress._asdict()
    data["run_time"] = job.run_time
    return data


@pytest.mark.parametrize("job", [
    Job(1, "q", "text", {}, 0, JobState.READY, 0, 3, None, None, 1.0, 1.0, 1.0),
    Job(2, "q", {"a": [1, {"b": None}], "c": 1.5}, {"h": "v", "n": 1}, 5, JobState.DONE, 2, 3,
        None, None, 1.0, 2.0, 3.0, 4.0, "boom", "key", True, (1, 2), [{"r": 1}], 9.0, 2.5,
        "worker-1", Progress(0.5, "half"), True, "why", "g"),
])
def test_to_dict_is_asdict_without_shared_containers(job: Job) -> None:
    data = job.to_dict()
    assert data == _asdict(job) and list(data) == list(_asdict(job))
    for name in ("payload", "headers", "result"):
        value = getattr(job, name)
        assert not isinstance(value, dict | list) or data[name] is not value
    if isinstance(job.payload, dict):
        data["payload"]["a"].append(2)
        assert job.payload["a"] == [1, {"b": None}]
