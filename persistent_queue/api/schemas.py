"""Request and response bodies of the HTTP API (pydantic), with the library's bounds.

Request models are strict (no type coercion, no unknown fields, finite numbers only) so a
mistake is a 422 naming the field instead of a surprise later. Response models that carry one
of the library's values (:mod:`..models`) are derived from its dataclass by
:func:`derived_from`: every field, its type and its description come from there, and a
response model declares only what the API adds.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Callable
from typing import Annotated, Any, TypeVar, cast, get_type_hints

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    create_model,
    model_validator,
)

from .. import config, flow, models

NAME_REGEX = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
MAX_ID = 2**63 - 1

QueueName = Annotated[str, Field(pattern=NAME_REGEX, description="1-128 of A-Z a-z 0-9 _ . -",
                                 examples=["emails"])]
JobId = Annotated[int, Field(ge=1, le=MAX_ID, description="the job's id")]
LeaseToken = Annotated[str, Field(min_length=1, max_length=128,
                                  description="the token returned by the claim")]
Priority = Annotated[int, Field(ge=config.PRIORITY_MIN, le=config.PRIORITY_MAX,
                                description="higher runs first")]
Delay = Annotated[float, Field(ge=0, le=config.MAX_DELAY, allow_inf_nan=False,
                               description="seconds")]
Timeout = Annotated[float, Field(gt=0, le=config.MAX_VISIBILITY_TIMEOUT, allow_inf_nan=False,
                                 description="seconds")]
Attempts = Annotated[int, Field(ge=1, le=config.MAX_ATTEMPTS_LIMIT)]
RunTimeout = Annotated[float, Field(
    gt=0, le=config.MAX_TIMEOUT, allow_inf_nan=False,
    description="seconds an attempt may run before its worker stops it and the attempt fails "
                "(timed out); default: the queue's")]
Limit = Annotated[int, Field(ge=1, le=flow.MAX_LIMIT,
                              description="jobs at once, across every consumer")]
RateLimit = Annotated[str, Field(max_length=40, examples=["50/s"], description=(
    'claims per period across every consumer: "50/s", "100/m", "1000/h" or "3/10s" '
    "(a burst of the count, then evenly spaced)"))]
AlertCount = Annotated[int, Field(ge=1, le=2**62, description="fires at this many jobs or more")]
AlertAge = Annotated[float, Field(gt=0, le=config.MAX_DELAY, allow_inf_nan=False,
                                  description="fires when the oldest ready job has waited "
                                              "this many seconds or more")]
AlertRate = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False, description=(
    "fires when this share of the attempts ended in the last 15 minutes failed or more"))]
GroupKey = Annotated[str, Field(min_length=1, max_length=flow.MAX_GROUP_KEY_CHARS,
                                description="the job's group: on a queue with group limits, a "
                                            "group's jobs start in enqueue order")]
HeaderValue = StrictStr | StrictInt | StrictFloat | StrictBool | None
Headers = Annotated[dict[str, HeaderValue], Field(max_length=config.MAX_HEADERS)]


class StrictModel(BaseModel):
    """Base of request bodies: strict types, no unknown fields, no NaN/Infinity."""

    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)


class EnqueueRequest(StrictModel):
    """A job to store."""

    queue: Annotated[QueueName | None, Field(
        description="default: the server's default queue (PQ_DEFAULT_QUEUE, else 'default')")
    ] = None
    payload: Any = Field(description="any JSON value (at most 1 MiB encoded)")
    priority: Priority = 0
    delay: Delay = 0
    run_at: Annotated[float | None, Field(ge=0, allow_inf_nan=False,
                                          description="epoch seconds; not with delay")] = None
    headers: Headers | None = None
    max_attempts: Attempts | None = None
    depends_on: Annotated[list[JobId] | None, Field(
        max_length=config.MAX_DEPENDENCIES,
        description="ids of jobs that must be acked first (the job waits until then)")] = None
    dedup_key: Annotated[str | None, Field(
        min_length=1, max_length=config.MAX_DEDUP_KEY_CHARS,
        description="while a job of this queue with this key is unfinished, return it "
                    "instead (200, deduplicated: true)")] = None
    dedup_window: Annotated[float | None, Field(
        ge=0, le=config.MAX_DELAY, allow_inf_nan=False,
        description="also while that job finished less than this many seconds ago")] = None
    timeout: RunTimeout | None = None
    group_key: GroupKey | None = None

    @model_validator(mode="after")
    def _window_needs_key(self) -> EnqueueRequest:
        if self.dedup_window is not None and self.dedup_key is None:
            raise ValueError("dedup_window needs a dedup_key")
        return self


class BatchJobRequest(StrictModel):
    """One job of ``POST /queues/{name}/jobs/batch`` (the options of an enqueue, per job)."""

    payload: Any = Field(description="any JSON value (at most 1 MiB encoded)")
    priority: Priority = 0
    delay: Delay = 0
    run_at: Annotated[float | None, Field(ge=0, allow_inf_nan=False,
                                          description="epoch seconds; not with delay")] = None
    headers: Headers | None = None
    max_attempts: Attempts | None = None
    timeout: RunTimeout | None = None
    group_key: GroupKey | None = None


BatchRequest = Annotated[list[BatchJobRequest], Field(
    min_length=1, max_length=config.MAX_BATCH,
    description=f"1-{config.MAX_BATCH:,} jobs, stored in one transaction: all or none")]


class BatchOut(BaseModel):
    """The jobs a batch stored, in the order given."""

    queue: str = Field(description="the queue they were stored in")
    ids: list[int] = Field(description="their ids, in the order of the request")


class TaskRequest(StrictModel):
    """A call of a task, stored as a job that a worker runs (``POST /tasks/{name}``)."""

    args: Annotated[list[Any], Field(description="positional arguments (JSON values)")] = []
    kwargs: Annotated[dict[str, Any], Field(description="keyword arguments (JSON values)")] = {}
    queue: Annotated[QueueName | None, Field(
        description="default: the queue the task was declared with")] = None
    priority: Priority = 0
    delay: Delay = 0
    run_at: Annotated[float | None, Field(ge=0, allow_inf_nan=False,
                                          description="epoch seconds; not with delay")] = None
    headers: Headers | None = None
    max_attempts: Attempts | None = None
    depends_on: Annotated[list[JobId], Field(
        max_length=config.MAX_DEPENDENCIES,
        description="ids of jobs that must be acked first; the task can read their results")
    ] = []
    dedup_key: Annotated[str | None, Field(
        min_length=1, max_length=config.MAX_DEDUP_KEY_CHARS,
        description="while a job of the queue with this key is unfinished, return it instead "
                    "(200, deduplicated: true)")] = None
    timeout: Annotated[float | None, Field(
        gt=0, le=config.MAX_TIMEOUT, allow_inf_nan=False,
        description="seconds an attempt may run (default: the task's, else the queue's)")
    ] = None
    group_key: GroupKey | None = None


class TaskOut(BaseModel):
    """A task the server can enqueue (declared with ``@q.task`` in its ``--app``)."""

    name: str = Field(description="what POST /tasks/{name} and workers route by")
    queue: str = Field(description="the queue its jobs go to by default")
    max_attempts: int | None = Field(description="attempts before dead-lettering "
                                                 "(null: the queue's)")
    timeout: float | None = Field(description="seconds a run is expected to take")


class ResultOut(BaseModel):
    """Where a job's result stands: ``done`` with its ``result``, ``dead`` or ``cancelled``
    with its ``error``, or still unfinished (``waiting``, ``ready`` or ``leased``)."""

    id: int = Field(description="the job's id")
    state: str = Field(description="done, dead, cancelled, or the unfinished job's state")
    result: Any = Field(default=None, description="what the task returned (state done)")
    error: str | None = Field(default=None, description=(
        "the last error, else the dead-letter reason (state dead); the cancellation's "
        "reason, else 'cancelled' (state cancelled)"))


class DequeueRequest(StrictModel):
    """Claim the next ready job of a queue."""

    queue: Annotated[QueueName | None, Field(
        description="default: the server's default queue (PQ_DEFAULT_QUEUE, else 'default')")
    ] = None
    visibility_timeout: Timeout | None = None
    wait: Annotated[float, Field(ge=0, le=config.MAX_WAIT, allow_inf_nan=False,
                                 description="long-poll seconds")] = 0


class LeaseRequest(StrictModel):
    """Identifies a claimed job and proves the caller holds its lease."""

    id: JobId
    lease_token: LeaseToken


class NackRequest(LeaseRequest):
    """A failed attempt: retried after ``delay`` (default: backoff) or dead-lettered."""

    error: Annotated[str | None, Field(max_length=config.MAX_ERROR_CHARS)] = None
    delay: Delay | None = None


class ExtendRequest(LeaseRequest):
    """Move the lease's end to ``seconds`` from now (default: the queue's timeout)."""

    seconds: Timeout | None = None


class RequeueRequest(LeaseRequest):
    """Give the job back without counting the attempt."""

    delay: Delay = 0


class CreateQueueRequest(StrictModel):
    """A queue with its own settings."""

    name: QueueName
    max_attempts: Attempts | None = None
    visibility_timeout: Timeout | None = None
    max_size: Annotated[int | None, Field(ge=1, le=config.MAX_QUEUE_SIZE)] = None
    exist_ok: bool = False
    timeout: RunTimeout | None = None
    concurrency: Limit | None = None
    rate_limit: RateLimit | None = None
    group_concurrency: Annotated[int | None, Field(
        ge=1, le=flow.MAX_LIMIT, description="jobs of one group at once (1: one at a time, in "
                                             "enqueue order)")] = None
    group_rate_limit: Annotated[str | None, Field(
        max_length=40, description="claims per period of one group, e.g. \"5/s\"")] = None
    alert_depth: AlertCount | None = None
    alert_oldest_age: AlertAge | None = None
    alert_failure_rate: AlertRate | None = None
    alert_dead_letters: AlertCount | None = None


class UpdateQueueRequest(StrictModel):
    """Settings to change; omitted fields stay, ``max_size: null`` removes the bound and
    ``timeout: null`` the run-time limit, and ``null`` removes a flow-control limit
    (``concurrency``, ``rate_limit``, ``group_concurrency``, ``group_rate_limit``) or an alert
    (``alert_depth``, ``alert_oldest_age``, ``alert_failure_rate``, ``alert_dead_letters``)."""

    max_attempts: Attempts | None = None
    visibility_timeout: Timeout | None = None
    max_size: Annotated[int | None, Field(ge=1, le=config.MAX_QUEUE_SIZE)] = None
    timeout: RunTimeout | None = None
    concurrency: Limit | None = None
    rate_limit: RateLimit | None = None
    group_concurrency: Annotated[int | None, Field(ge=1, le=flow.MAX_LIMIT)] = None
    group_rate_limit: Annotated[str | None, Field(max_length=40)] = None
    alert_depth: AlertCount | None = None
    alert_oldest_age: AlertAge | None = None
    alert_failure_rate: AlertRate | None = None
    alert_dead_letters: AlertCount | None = None


class RedriveRequest(StrictModel):
    """Move every dead letter of a queue back to it."""

    queue: QueueName


class DeadLetterRequest(StrictModel):
    """Why an operator moves a job to the dead-letter table."""

    reason: Annotated[str, Field(min_length=1, max_length=1024)] = "moved by an operator"


class CancelRequest(StrictModel):
    """Why an operator cancels a job (optional: the body may be left out)."""

    reason: Annotated[str | None, Field(max_length=config.MAX_REASON_CHARS,
                                        description="kept as the job's cancel_reason")] = None


class EditDeadLetterRequest(StrictModel):
    """What to change in a dead letter before redriving it; omitted fields stay as they are.

    ``payload`` and ``headers`` are checked exactly as an enqueue checks them;
    ``headers: null`` removes the headers.
    """

    payload: Any = Field(default=None, description="any JSON value (at most 1 MiB encoded)")
    headers: Headers | None = None
    priority: Priority = 0


class CleanupRequest(StrictModel):
    """Delete done jobs finished more than ``older_than`` seconds ago."""

    older_than: Annotated[float, Field(ge=0, le=100 * 365 * 86400, allow_inf_nan=False)] = (
        7 * 86400)
    queue: QueueName | None = None
    vacuum: bool = False


#: One entry of a docstring's ``Attributes:`` section: ``name: text``, continued on lines
#: indented further.
_ATTRIBUTE = re.compile(r"^    (\w+): (.+(?:\n {8}\S.*)*)", re.MULTILINE)
_Model = TypeVar("_Model", bound=BaseModel)


def field_descriptions(source: type[Any]) -> dict[str, str]:
    """Each attribute's text in the ``Attributes:`` section of ``source``'s docstring."""
    doc = inspect.cleandoc(source.__doc__ or "")
    section = doc.partition("\nAttributes:\n")[2].split("\n\n")[0]
    return {name: " ".join(words.split()) for name, words in _ATTRIBUTE.findall(section)}


def derived_from(source: type[Any]) -> Callable[[type[_Model]], type[_Model]]:
    """Make the decorated response model carry every field of the dataclass ``source``.

    Each field keeps the dataclass's type (required: a response always has it) and takes its
    description from the ``Attributes:`` section of ``source``'s docstring; the fields the
    decorated class declares itself (values the API adds, like a computed property) follow
    (one of a field's name replaces it), and its name and docstring name and describe the
    model in the OpenAPI schema.
    """

    def derive(declared: type[_Model]) -> type[_Model]:
        hints = get_type_hints(source)
        described = field_descriptions(source)
        fields: dict[str, Any] = {
            item.name: (hints[item.name], Field(description=described.get(item.name)))
            for item in dataclasses.fields(source)}
        fields.update((name, (info.annotation, info))
                      for name, info in declared.model_fields.items())
        model = create_model(declared.__name__, __config__=declared.model_config,
                             __doc__=declared.__doc__, __module__=declared.__module__,
                             **fields)
        # Not a subclass of ``declared``, but it has its name, docstring and fields.
        return cast(type[_Model], model)

    return derive


class ProgressOut(BaseModel):
    """How far a running job has come, as its handler last said (``Job.progress``)."""

    fraction: float = Field(description="from 0 to 1")
    message: str | None = Field(description="the handler's words with it, if any")


@derived_from(models.Job)
class JobOut(BaseModel):
    """A job as stored (``lease_token`` only on the response to a claim)."""

    # An object, as ``Job.to_dict`` gives it (the dataclass holds a named tuple).
    progress: ProgressOut | None = Field(description=field_descriptions(models.Job)["progress"])
    run_time: float | None = Field(description=models.Job.run_time.__doc__)


@derived_from(models.DeadLetter)
class DeadLetterOut(BaseModel):
    """A dead-lettered job."""


class NackOut(BaseModel):
    """Where a nacked job went: back to the queue (``job``), dead-lettered
    (``dead_letter``), or cancelled (``job``: its cancellation had been requested)."""

    outcome: str = Field(description="'retry', 'dead' or 'cancelled'")
    job: JobOut | None = None
    dead_letter: DeadLetterOut | None = None


@derived_from(models.JobEvent)
class JobEventOut(BaseModel):
    """One line of a job's history."""


@derived_from(models.QueueInfo)
class QueueOut(BaseModel):
    """A queue's settings."""


@derived_from(models.QueueStats)
class QueueStatsOut(BaseModel):
    """Jobs of a queue by state at one moment."""

    pending: int = Field(description=models.QueueStats.pending.__doc__)


@derived_from(models.Alert)
class AlertOut(BaseModel):
    """One of a queue's alerts, measured now."""


@derived_from(models.RunningJob)
class RunningJobOut(BaseModel):
    """A job running now."""


@derived_from(models.WorkerInfo)
class WorkerOut(BaseModel):
    """A registered producer or consumer process."""


@derived_from(models.ThroughputPoint)
class ThroughputOut(BaseModel):
    """Counts of one queue in one time bucket."""


@derived_from(models.Subscription)
class SubscriptionOut(BaseModel):
    """A queue subscribed to a topic."""


@derived_from(models.ScheduleInfo)
class ScheduleOut(BaseModel):
    """A recurring schedule and its bookkeeping (``finished_at`` is set once a cron expression
    has run out of ticks: the schedule never fires again)."""


class CountOut(BaseModel):
    """How many items an operation affected."""

    count: int


class IdsOut(BaseModel):
    """The ids an operation affected."""

    ids: list[int]


class OkOut(BaseModel):
    """The operation succeeded."""

    ok: bool = True
