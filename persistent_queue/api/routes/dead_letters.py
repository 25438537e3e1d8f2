"""The dead-letter table: list, edit one, redrive one or a whole queue, purge."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from ... import config
from ...errors import JobNotFound
from ...queue import Queue
from ..factory import get_queue
from ..schemas import (
    MAX_ID,
    NAME_REGEX,
    CountOut,
    DeadLetterOut,
    EditDeadLetterRequest,
    IdsOut,
    RedriveRequest,
)
from ..strict_json import StrictJSONRoute

router = APIRouter(route_class=StrictJSONRoute, tags=["dead letters"])
QueueDep = Annotated[Queue, Depends(get_queue)]
QueueFilter = Annotated[str | None, Query(alias="queue", pattern=NAME_REGEX)]


@router.get("/dead-letters", response_model=list[DeadLetterOut])
def list_dead_letters(
    queue: QueueDep,
    queue_name: QueueFilter = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
) -> list[dict[str, Any]]:
    """Dead-lettered jobs (of one queue or all), newest first."""
    return [dead.to_dict() for dead in queue.dead_letters(queue_name, limit=limit, offset=offset)]


@router.patch("/dead-letters/{job_id}", response_model=DeadLetterOut)
def edit_dead_letter(
    job_id: Annotated[int, Path(ge=1, le=MAX_ID)], body: EditDeadLetterRequest, queue: QueueDep
) -> dict[str, Any]:
    """Change a dead letter's ``payload``, ``headers`` or ``priority`` before redriving it.

    Only the fields given change (``headers: null`` removes them); payload and headers are
    checked as an enqueue checks them (422, 413). 404 if no dead letter has that id, 409 if
    the job is not dead-lettered.
    """
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    return queue.edit_dead_letter(job_id, **changes).to_dict()


@router.post("/dead-letters/redrive", response_model=IdsOut)
def redrive_queue(body: RedriveRequest, queue: QueueDep) -> IdsOut:
    """Move every dead letter of a queue back to it, attempts reset; returns their ids."""
    return IdsOut(ids=queue.redrive(body.queue))


@router.post("/dead-letters/{job_id}/redrive", response_model=IdsOut)
def redrive_one(
    job_id: Annotated[int, Path(ge=1, le=MAX_ID)], queue: QueueDep
) -> IdsOut:
    """Move one dead letter back to its queue (404 if no dead letter has that id)."""
    ids = queue.redrive(job_id)
    if not ids:
        raise JobNotFound(f"no dead letter has id {job_id}")
    return IdsOut(ids=ids)


@router.delete("/dead-letters", response_model=CountOut)
def purge_dead_letters(
    queue: QueueDep,
    queue_name: QueueFilter = None,
    older_than: Annotated[float, Query(ge=0, le=config.MAX_DELAY, allow_inf_nan=False,
                                       description="only those dead for longer (seconds)")] = 0,
) -> CountOut:
    """Delete dead letters (of one queue or all); returns how many."""
    return CountOut(count=queue.purge_dead_letters(queue_name, older_than=older_than))
