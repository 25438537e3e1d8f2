"""Tasks over HTTP: enqueue a task by name, and wait for a job's result.

``POST /tasks/{name}`` needs the server to know the tasks: ``pq api --app myapp.tasks:q`` (or
``PQ_APP``) imports the module and takes the tasks declared with ``@q.task`` on that Queue; the
job is stored in the server's own database (``--db``), where ``pq worker --app ...`` runs it.

``GET /jobs/{id}/result?wait=S`` long-polls as ``/dequeue?wait=`` does: on the AsyncQueue,
holding no thread while it waits, stopping early when the client leaves (checked every
``POLL_SLICE`` seconds), never longer than the server's ``--max-wait``. It answers 200 once
the job is finished (done with its ``result``, dead-lettered or cancelled with its ``error``:
check ``state``), 202 with the job's state when it is not finished within the wait, 404 for
an unknown id.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse

from ... import config
from ...aio import AsyncQueue, async_queue_for
from ...errors import ResultTimeout, TaskFailed
from ...models import Job, JobState
from ...tasks import Task
from ..errors import error_response
from ..factory import ApiState, get_state
from ..schemas import MAX_ID, JobOut, ResultOut, TaskOut, TaskRequest
from ..strict_json import StrictJSONRoute
from .messages import until_done_or_gone

router = APIRouter(route_class=StrictJSONRoute, tags=["tasks"])
StateDep = Annotated[ApiState, Depends(get_state)]
TaskName = Annotated[str, Path(min_length=1, max_length=200,
                               description="the task's name, e.g. myapp.tasks.send_email")]
IdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="the job's id")]

#: Says how to give the server its tasks (ends the 422 of a server without them).
NO_REGISTRY = ("this server has no tasks: start the API with --app module:q (or PQ_APP) naming "
               "the Queue your @q.task functions are declared on")

_TASK_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"model": JobOut, "description": "Deduplicated: the existing job with the dedup key."},
    422: {"description": "``unknown_task``: no task of that name (``no_task_registry``: the "
                         "server was started without --app); ``invalid_arguments``: the "
                         "arguments do not fit the function; or another invalid field."},
    429: {"description": "The queue is full (max_size); retry later."},
}
_RESULT_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"model": ResultOut, "description": "Finished: ``state`` is ``done`` (with "
                                             "``result``), ``dead`` or ``cancelled`` (with "
                                             "``error``)."},
    202: {"model": ResultOut, "description": "Not finished within ``wait``: ``state`` is "
                                             "``waiting``, ``ready`` or ``leased``."},
    404: {"description": "No job has that id (or the done job was cleaned up)."},
}


def _describe(task: Task[Any, Any]) -> dict[str, Any]:
    return {"name": task.name, "queue": task.queue, "max_attempts": task.max_attempts,
            "timeout": task.timeout}


@router.get("/tasks", response_model=list[TaskOut])
def list_tasks(state: StateDep) -> list[dict[str, Any]]:
    """The tasks this server can enqueue (those of ``--app``; none without it)."""
    registry = state.registry
    return [] if registry is None else [_describe(task) for task in registry]


def _arguments_problem(task: Task[Any, Any], body: TaskRequest) -> str | None:
    """Why ``body``'s arguments cannot call the task's function, or None if they can."""
    try:
        signature = inspect.signature(task.fn)
    except (TypeError, ValueError):
        return None  # no signature to check against (a builtin): the worker will tell
    try:
        signature.bind(*body.args, **body.kwargs)
    except TypeError as exc:
        return f"the arguments do not fit {task.name}{signature}: {exc}"
    return None


@router.post("/tasks/{name:path}", status_code=201, response_model=JobOut,
             responses=_TASK_RESPONSES)
def enqueue_task(name: TaskName, body: TaskRequest, state: StateDep) -> JSONResponse:
    """Store a job that runs the task ``name`` with ``args`` and ``kwargs`` (201 with the job:
    its ``id`` is what ``GET /jobs/{id}/result`` waits on).

    Needs a server started with ``--app module:q``: without it every name is a 422
    ``no_task_registry``; a name that is not one of its tasks is a 422 ``unknown_task``.
    """
    registry = state.registry
    if registry is None:
        return error_response(422, "no_task_registry", f"cannot enqueue {name!r}: {NO_REGISTRY}")
    if name not in registry:
        known = ", ".join(registry.names()[:20]) or "none"
        return error_response(422, "unknown_task",
                              f"unknown task {name!r}; this server's tasks: {known}")
    task = registry.get(name)
    problem = _arguments_problem(task, body)
    if problem is not None:
        return error_response(422, "invalid_arguments", problem)
    options = task.options(queue=body.queue, delay=body.delay, run_at=body.run_at,
                           priority=body.priority, dedup_key=body.dedup_key,
                           depends_on=body.depends_on, headers=body.headers,
                           max_attempts=body.max_attempts, timeout=body.timeout,
                           group_key=body.group_key)
    handle = options.delay_on(state.queue, *body.args, **body.kwargs)
    job = handle.enqueued
    if not job.deduplicated:
        state.metrics.enqueued.labels(job.queue).inc()
    return JSONResponse(JobOut.model_validate(job.to_dict()).model_dump(mode="json"),
                        status_code=200 if job.deduplicated else 201)


def _answer(job_id: int, status: int, job_state: str, *, result: Any = None,
            error: str | None = None) -> JSONResponse:
    body = ResultOut(id=job_id, state=job_state, result=result, error=error)
    return JSONResponse(body.model_dump(mode="json"), status_code=status)


@router.get("/jobs/{job_id}/result", response_model=ResultOut, responses=_RESULT_RESPONSES,
            tags=["jobs"])
async def job_result(
    job_id: IdPath, request: Request, state: StateDep,
    wait: Annotated[float, Query(ge=0, le=config.MAX_WAIT, allow_inf_nan=False,
                                 description="long-poll seconds (at most the server's "
                                             "--max-wait)")] = 0,
) -> JSONResponse:
    """A job's result, waiting up to ``wait`` seconds for it to finish.

    200 ``{"id", "state": "done", "result"}`` once done; 200 ``{"id", "state": "dead",
    "error"}`` once dead-lettered (the task failed: no result will come), or ``"state":
    "cancelled"`` with the cancellation's reason as ``error``; 202 ``{"id", "state"}`` when
    not finished within ``wait``; 404 for an unknown id.
    """
    if wait > state.max_wait:
        return error_response(422, "validation_error",
                              f"wait: must be at most {state.max_wait:g} seconds on this server")
    aq = async_queue_for(state.queue)
    if not wait:
        return await _look(aq, job_id, 0)
    waiting = asyncio.ensure_future(_look(aq, job_id, wait))
    if not await until_done_or_gone(request, waiting):
        return _answer(job_id, 202, (await aq.get_job(job_id)).state.value)
    return waiting.result()


async def _look(aq: AsyncQueue, job_id: int, wait: float) -> JSONResponse:
    """The answer once the job is finished, or 202 with its state after ``wait`` s."""
    try:
        result = await aq.result(job_id, timeout=wait)
    except TaskFailed as exc:
        ended: Job = await aq.get_job(job_id)
        cancelled = ended.state is JobState.CANCELLED
        return _answer(job_id, 200, "cancelled" if cancelled else "dead", error=exc.error)
    except ResultTimeout:
        job: Job = await aq.get_job(job_id)
        if job.state in (JobState.DONE, JobState.DEAD, JobState.CANCELLED):
            return await _look(aq, job_id, 0)  # it finished just now: answer with it
        return _answer(job_id, 202, job.state.value)
    return _answer(job_id, 200, "done", result=result)
