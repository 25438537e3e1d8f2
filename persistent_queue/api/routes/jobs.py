"""Jobs as resources: one job, its history, and a filtered, paged list."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from ... import config
from ...errors import InvalidArgument
from ...models import JobState
from ...queue import Queue
from ..factory import get_queue
from ..schemas import (
    MAX_ID,
    NAME_REGEX,
    CleanupRequest,
    CountOut,
    DeadLetterOut,
    DeadLetterRequest,
    JobEventOut,
    JobOut,
)
from ..strict_json import StrictJSONRoute

router = APIRouter(route_class=StrictJSONRoute, tags=["jobs"])
QueueDep = Annotated[Queue, Depends(get_queue)]
IdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="the job's id")]


def _header_filters(values: list[str]) -> dict[str, str]:
    filters: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition(":")
        if not sep or not key:
            raise InvalidArgument(f"header filter {item[:80]!r} must look like key:value")
        filters[key] = value
    return filters


@router.get("/jobs", response_model=list[JobOut])
def list_jobs(
    queue: QueueDep,
    queue_name: Annotated[str | None, Query(alias="queue", pattern=NAME_REGEX)] = None,
    state: Annotated[JobState | None, Query()] = None,
    header: Annotated[list[str], Query(
        max_length=config.MAX_HEADERS,
        description="key:value (repeatable); matches jobs whose header has that string value",
    )] = [],  # noqa: B006 - FastAPI copies defaults
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
    newest_first: bool = True,
) -> list[dict[str, Any]]:
    """Jobs filtered by queue, state and header values, newest first by default."""
    jobs = queue.list_jobs(queue_name, state=state, headers=_header_filters(header),
                           limit=limit, offset=offset, newest_first=newest_first)
    return [job.to_dict() for job in jobs]


@router.get("/jobs/{job_id}", response_model=JobOut)
def get_job(job_id: IdPath, queue: QueueDep) -> dict[str, Any]:
    """A job by id, wherever it is (404 if none has that id)."""
    return queue.get_job(job_id).to_dict()


@router.get("/jobs/{job_id}/history", response_model=list[JobEventOut])
def job_history(job_id: IdPath, queue: QueueDep) -> list[dict[str, Any]]:
    """The job's failures, expired leases, dead-letterings and redrives, oldest first."""
    queue.get_job(job_id)
    return [event.to_dict() for event in queue.history(job_id)]


@router.post("/jobs/{job_id}/dead-letter", response_model=DeadLetterOut)
def dead_letter_job(job_id: IdPath, body: DeadLetterRequest, queue: QueueDep) -> dict[str, Any]:
    """Move a job that is not finished to the dead-letter table now (an operator's action)."""
    return queue.move_to_dead_letter_queue(job_id, body.reason).to_dict()


@router.post("/cleanup", response_model=CountOut)
def cleanup(body: CleanupRequest, queue: QueueDep) -> CountOut:
    """Delete done jobs finished more than ``older_than`` seconds ago; returns how many."""
    return CountOut(count=queue.cleanup(body.older_than, queue=body.queue, vacuum=body.vacuum))
