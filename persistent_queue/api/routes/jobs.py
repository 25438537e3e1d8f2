"""Jobs as resources: one job, its history, and a filtered, paged list; an operator's
actions on one job: cancel, delete, retry now, dead-letter."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response

from ... import config
from ...errors import InvalidArgument
from ...models import JobState
from ...queue import Queue
from ..factory import get_queue
from ..schemas import (
    MAX_ID,
    NAME_REGEX,
    CancelRequest,
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
    """The job's whole timeline, oldest first, done jobs included: enqueued, claimed (worker,
    attempt), failed (worker, run time, error), lease_expired, cancel_requested, cancelled,
    acked (worker, run time), dead_lettered, redriven."""
    queue.get_job(job_id)
    return [event.to_dict() for event in queue.history(job_id)]


_STATE_CONFLICT: dict[int | str, dict[str, object]] = {
    404: {"description": "No job has that id (``job_not_found``)."},
    409: {"description": "The job's state does not allow it (``invalid_job_state``, saying "
                         "why)."},
}


@router.post("/jobs/{job_id}/cancel", response_model=JobOut, responses=_STATE_CONFLICT)
def cancel_job(job_id: IdPath, queue: QueueDep,
               body: CancelRequest | None = None) -> dict[str, Any]:
    """Cancel a job; the body (``{"reason": ...}``) is optional.

    A waiting or ready job (delayed too) is ``cancelled`` at once and never runs. A running
    job stays ``leased`` with ``cancel_requested: true``: its worker stops it within about a
    second and it ends ``cancelled`` (an ack that comes first still acks it). Asking again
    changes nothing. 409 for a done, cancelled or dead-lettered job.
    """
    return queue.cancel(job_id, reason=None if body is None else body.reason).to_dict()


@router.delete("/jobs/{job_id}", status_code=204, responses=_STATE_CONFLICT)
def delete_job(job_id: IdPath, queue: QueueDep) -> Response:
    """Delete a waiting, ready, done or cancelled job with its history (204).

    409 for a leased job (cancel it first) or a dead letter (``DELETE /dead-letters``).
    """
    queue.delete_job(job_id)
    return Response(status_code=204)


@router.post("/jobs/{job_id}/retry", response_model=JobOut, responses=_STATE_CONFLICT)
def retry_job(job_id: IdPath, queue: QueueDep) -> dict[str, Any]:
    """Make a delayed or backing-off job claimable now (200 with the job).

    409 for a job that is already claimable or in any other state than ready.
    """
    return queue.retry_now(job_id).to_dict()


@router.post("/jobs/{job_id}/dead-letter", response_model=DeadLetterOut)
def dead_letter_job(job_id: IdPath, body: DeadLetterRequest, queue: QueueDep) -> dict[str, Any]:
    """Move a job that is not finished to the dead-letter table now (an operator's action)."""
    return queue.move_to_dead_letter_queue(job_id, body.reason).to_dict()


@router.post("/cleanup", response_model=CountOut)
def cleanup(body: CleanupRequest, queue: QueueDep) -> CountOut:
    """Delete done jobs finished more than ``older_than`` seconds ago; returns how many."""
    return CountOut(count=queue.cleanup(body.older_than, queue=body.queue, vacuum=body.vacuum))
