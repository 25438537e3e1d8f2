"""The hot path: enqueue, claim (with long poll), ack, nack, extend, requeue.

``/send`` and ``/receive`` are aliases of ``/enqueue`` and ``GET /dequeue``. ``/enqueue`` and
``/send`` take JSON or a form (``curl -d 'message=Hello World'``, see :mod:`..enqueue_body`); an
enqueue or claim that names no queue uses the server's default queue (``PQ_DEFAULT_QUEUE``,
else ``default``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from functools import partial
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter, ValidationError

from ... import config
from ...aio import async_queue_for
from ...errors import QueueError
from ...models import DeadLetter, Job, JobState
from ...queue import Queue
from ..enqueue_body import FORM, FORM_SCHEMA, InvalidBody, is_json, parse_enqueue
from ..errors import describe_validation, error_response, queue_error_response
from ..factory import ApiState, get_queue, get_state
from ..schemas import (
    NAME_REGEX,
    BatchOut,
    BatchRequest,
    DequeueRequest,
    EnqueueRequest,
    ExtendRequest,
    JobOut,
    LeaseRequest,
    NackOut,
    NackRequest,
    OkOut,
    RequeueRequest,
)
from ..strict_json import StrictJSONRoute, strict_loads

logger = logging.getLogger(__name__)
router = APIRouter(route_class=StrictJSONRoute, tags=["messages"])
QueueDep = Annotated[Queue, Depends(get_queue)]
StateDep = Annotated[ApiState, Depends(get_state)]
#: A long poll checks this often (seconds) that its client is still there.
POLL_SLICE = 1.0


async def until_done_or_gone(request: Request, waiting: asyncio.Future[Any]) -> bool:
    """Wait for ``waiting`` (a long poll on the AsyncQueue), checking every ``POLL_SLICE``
    that the client is still there; if it left, cancel the wait and return False."""
    while True:
        done, _ = await asyncio.wait([waiting], timeout=POLL_SLICE)
        if done:
            return True
        if await request.is_disconnected():
            waiting.cancel()
            await asyncio.gather(waiting, return_exceptions=True)
            return False

_CLAIM_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"description": "The claimed job, with its lease token."},
    204: {"description": "No job was ready (within `wait` seconds)."},
}


_ENQUEUE_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"model": JobOut, "description": "Deduplicated: the existing job with the dedup key."},
    415: {"description": "Neither JSON nor a form."},
    422: {"description": "Invalid input, with what a valid request looks like "
                         "(``invalid_dependency``: a depends_on id names no job)."},
    429: {"description": "The queue is full (max_size); retry later."},
}
#: The body FastAPI cannot infer (the routes read it themselves): JSON or a form.
_ENQUEUE_BODY: dict[str, object] = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": EnqueueRequest.model_json_schema()},
    FORM: {"schema": FORM_SCHEMA},
}}}


async def enqueue_response(state: ApiState, content_type: str | None, body: bytes,
                           method: str = "POST", path: str = "/enqueue") -> Response:
    """The whole of ``POST /enqueue`` once its body is read: parse, store (in a worker
    thread), answer 201 (200 if deduplicated) or the error. Library errors are answered here
    too, so the fast path (:mod:`..fast_path`) can call it outside the router."""
    try:
        request = parse_enqueue(content_type, body, state.default_queue)
    except InvalidBody as exc:
        return error_response(exc.status, exc.error, exc.detail, problems=exc.problems)
    try:
        job = await to_thread.run_sync(partial(
            state.queue.enqueue, request.queue or state.default_queue, request.payload,
            priority=request.priority, delay=request.delay, run_at=request.run_at,
            max_attempts=request.max_attempts, headers=request.headers,
            depends_on=request.depends_on, dedup_key=request.dedup_key,
            dedup_window=request.dedup_window, timeout=request.timeout,
            group_key=request.group_key))
    except QueueError as exc:
        return queue_error_response(exc, method, path)
    if not job.deduplicated:
        state.metrics.enqueued.labels(job.queue).inc()
    # Job.to_dict() is JobOut's JSON already (tests/integration/api checks the schema).
    return JSONResponse(job.to_dict(), status_code=200 if job.deduplicated else 201)


async def _enqueue(request: Request, state: ApiState) -> Response:
    return await enqueue_response(state, request.headers.get("content-type"),
                                  await request.body(), request.method, request.url.path)


@router.post("/enqueue", status_code=201, response_model=JobOut, responses=_ENQUEUE_RESPONSES,
             openapi_extra=_ENQUEUE_BODY)
async def enqueue(request: Request, state: StateDep) -> Response:
    """Store a job; it is durable when this returns (201).

    The body is JSON (``{"queue": "emails", "payload": ...}``) or a form
    (``message=Hello+World&queue=emails``, the message as the payload's text); without a queue
    the job goes to the server's default queue. With ``depends_on`` the job waits until those
    jobs are acked. With a ``dedup_key`` that an unfinished job of the queue already has, that
    job is returned instead: 200 with ``"deduplicated": true``.
    """
    return await _enqueue(request, state)


@router.post("/send", status_code=201, response_model=JobOut, responses=_ENQUEUE_RESPONSES,
             openapi_extra=_ENQUEUE_BODY)
async def send(request: Request, state: StateDep) -> Response:
    """Alias of ``POST /enqueue``: ``curl -X POST .../send -d "message=Hello World"``."""
    return await _enqueue(request, state)


_BATCH = TypeAdapter(BatchRequest)
_BATCH_BODY: dict[str, object] = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": _BATCH.json_schema()}}}}
_BATCH_RESPONSES: dict[int | str, dict[str, object]] = {
    413: {"description": "The body is larger than the server's limit (``--max-body``)."},
    415: {"description": "Not JSON."},
    422: {"description": "Invalid input (nothing stored): the problems, each naming the "
                         "job's index and field."},
    429: {"description": "The queue is full (max_size); nothing stored, retry later."},
}


@router.post("/queues/{name}/jobs/batch", status_code=201, response_model=BatchOut,
             responses=_BATCH_RESPONSES, openapi_extra=_BATCH_BODY)
async def enqueue_batch(
    request: Request, state: StateDep,
    name: Annotated[str, Path(pattern=NAME_REGEX, description="the queue's name")],
) -> Response:
    """Store a JSON array of jobs (each ``{"payload": ..., "priority": ...}`` with the options
    of ``/enqueue`` but ``queue``, ``depends_on`` and ``dedup_*``) in one transaction: every
    job is checked first and either all are stored (201 with their ids, in order) or none.
    """
    media_type = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if not is_json(media_type):
        return error_response(415, "unsupported_media_type",
                              f"Content-Type {media_type!r} is not accepted; send a JSON array")
    try:
        jobs = strict_loads(await request.body())
        _BATCH.validate_python(jobs, strict=True)  # the parsed values are what it checked
    except json.JSONDecodeError as exc:
        return error_response(422, "validation_error", f"invalid JSON body: {exc.msg}",
                              problems=[{"field": "body", "message": exc.msg}])
    except ValidationError as exc:
        errors = [{**error, "loc": ("jobs", *error["loc"])} for error in exc.errors()]
        summary, problems = describe_validation(RequestValidationError(errors))
        return error_response(422, "validation_error", summary, problems=problems)
    stored = await to_thread.run_sync(state.queue.enqueue_batch, name, jobs)
    state.metrics.enqueued.labels(name).inc(len(stored))
    return JSONResponse({"queue": name, "ids": [job.id for job in stored]}, status_code=201)


async def _claim(request: Request, state: ApiState, body: DequeueRequest) -> Response:
    """Claim one job, long-polling up to ``wait`` seconds on the AsyncQueue: a waiting poll
    holds no thread (a future woken by commits), and stops when its client leaves."""
    if body.wait > state.max_wait:
        return error_response(422, "validation_error",
                              f"wait: must be at most {state.max_wait:g} seconds on this server")
    queue = state.queue
    name = body.queue or state.default_queue
    # Drain the (replayed) body so that ``is_disconnected`` reads the server's own events.
    await request.body()
    started = time.monotonic()
    if body.wait:
        aq = async_queue_for(queue)
        waiting = asyncio.ensure_future(aq.dequeue(
            name, visibility_timeout=body.visibility_timeout, wait=body.wait))
        if not await until_done_or_gone(request, waiting):
            return Response(status_code=204)  # a job claimed meanwhile was given back
        job = waiting.result()
        if job is not None and await request.is_disconnected():
            # Nobody will receive this lease: give the job straight back.
            try:
                await aq.requeue(job)
            except QueueError:
                logger.warning("could not give back job %d after its client left", job.id,
                               exc_info=True, extra={"job_id": job.id})
            return Response(status_code=204)
    else:
        job = await to_thread.run_sync(partial(queue.dequeue, name,
                                               visibility_timeout=body.visibility_timeout))
    if job is None:
        return Response(status_code=204)
    state.metrics.record_claim(job, time.monotonic() - started)
    return JSONResponse(JobOut.model_validate(job.to_dict()).model_dump(mode="json"))


@router.post("/dequeue", response_model=JobOut, responses=_CLAIM_RESPONSES)
async def dequeue(request: Request, body: DequeueRequest, state: StateDep) -> Response:
    """Claim the next ready job (200 with its ``lease_token``) or 204 if none is ready.

    Without a queue, of the server's default queue.
    """
    return await _claim(request, state, body)


async def _claim_query(  # async: a long poll's request takes no pool thread at all
    queue: Annotated[str | None, Query(
        pattern=NAME_REGEX, description="the queue's name (default: the server's default "
                                        "queue, PQ_DEFAULT_QUEUE, else 'default')")] = None,
    wait: Annotated[float, Query(ge=0, le=config.MAX_WAIT, allow_inf_nan=False,
                                 description="long-poll seconds")] = 0,
    visibility_timeout: Annotated[float | None, Query(
        gt=0, le=config.MAX_VISIBILITY_TIMEOUT, allow_inf_nan=False)] = None,
) -> DequeueRequest:
    return DequeueRequest.model_construct(queue=queue, wait=wait,
                                          visibility_timeout=visibility_timeout)


ClaimQuery = Annotated[DequeueRequest, Depends(_claim_query)]


@router.get("/dequeue", response_model=JobOut, responses=_CLAIM_RESPONSES)
async def dequeue_get(request: Request, body: ClaimQuery, state: StateDep) -> Response:
    """``POST /dequeue`` with query parameters."""
    return await _claim(request, state, body)


@router.get("/receive", response_model=JobOut, responses=_CLAIM_RESPONSES)
async def receive(request: Request, body: ClaimQuery, state: StateDep) -> Response:
    """Alias of ``GET /dequeue``: ``curl .../receive`` claims from the default queue."""
    return await _claim(request, state, body)


@router.post("/ack", response_model=OkOut)
def ack(body: LeaseRequest, state: StateDep) -> OkOut:
    """Mark a claimed job done (409 ``lease_lost`` if the lease is no longer yours)."""
    state.queue.ack(body.id, body.lease_token)
    state.metrics.acked.inc()
    return OkOut()


@router.post("/nack", response_model=NackOut)
def nack(body: NackRequest, state: StateDep) -> dict[str, Any]:
    """Record a failed attempt: the job is retried later or dead-lettered (or cancelled, if
    its cancellation was requested)."""
    outcome: Job | DeadLetter = state.queue.nack(body.id, body.error, delay=body.delay,
                                                 lease_token=body.lease_token)
    state.metrics.record_nack(outcome)
    if isinstance(outcome, DeadLetter):
        return {"outcome": "dead", "dead_letter": outcome.to_dict()}
    ended = outcome.state is JobState.CANCELLED
    return {"outcome": "cancelled" if ended else "retry", "job": outcome.to_dict()}


@router.post("/extend", response_model=JobOut)
def extend(body: ExtendRequest, queue: QueueDep) -> dict[str, Any]:
    """Heartbeat: the lease now ends ``seconds`` from now."""
    return queue.extend(body.id, body.seconds, lease_token=body.lease_token).to_dict()


@router.post("/requeue", response_model=JobOut)
def requeue(body: RequeueRequest, queue: QueueDep) -> dict[str, Any]:
    """Give a claimed job back without counting the attempt."""
    return queue.requeue(body.id, body.delay, lease_token=body.lease_token).to_dict()
