"""Request and response bodies of the HTTP API (pydantic), with the library's bounds.

Request models are strict (no type coercion, no unknown fields, finite numbers only) so a
mistake is a 422 naming the field instead of a surprise later.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)

from .. import config

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

    @model_validator(mode="after")
    def _window_needs_key(self) -> EnqueueRequest:
        if self.dedup_window is not None and self.dedup_key is None:
            raise ValueError("dedup_window needs a dedup_key")
        return self


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
    max_size: Annotated[int | None, Field(ge=1, le=2**62)] = None
    exist_ok: bool = False


class UpdateQueueRequest(StrictModel):
    """Settings to change; omitted fields stay, ``max_size: null`` removes the bound."""

    max_attempts: Attempts | None = None
    visibility_timeout: Timeout | None = None
    max_size: Annotated[int | None, Field(ge=1, le=2**62)] = None


class RedriveRequest(StrictModel):
    """Move every dead letter of a queue back to it."""

    queue: QueueName


class DeadLetterRequest(StrictModel):
    """Why an operator moves a job to the dead-letter table."""

    reason: Annotated[str, Field(min_length=1, max_length=1024)] = "moved by an operator"


class CleanupRequest(StrictModel):
    """Delete done jobs finished more than ``older_than`` seconds ago."""

    older_than: Annotated[float, Field(ge=0, le=100 * 365 * 86400, allow_inf_nan=False)] = (
        7 * 86400)
    queue: QueueName | None = None
    vacuum: bool = False


class JobOut(BaseModel):
    """A job as stored (``lease_token`` only on the response to a claim)."""

    id: int
    queue: str
    payload: Any
    headers: dict[str, Any]
    priority: int
    state: str
    attempts: int
    max_attempts: int
    lease_token: str | None
    lease_expires_at: float | None
    created_at: float
    available_at: float
    updated_at: float
    finished_at: float | None = None
    last_error: str | None = None
    depends_on: list[int] = Field(default_factory=list)
    dedup_key: str | None = None
    deduplicated: bool = Field(
        default=False, description="true when an existing job with the dedup key was returned")


class DeadLetterOut(BaseModel):
    """A dead-lettered job."""

    id: int
    queue: str
    payload: Any
    headers: dict[str, Any]
    priority: int
    attempts: int
    max_attempts: int | None
    reason: str
    last_error: str | None
    created_at: float
    dead_at: float


class NackOut(BaseModel):
    """Where a nacked job went: back to the queue (``job``) or dead-lettered (``dead_letter``)."""

    outcome: str = Field(description="'retry' or 'dead'")
    job: JobOut | None = None
    dead_letter: DeadLetterOut | None = None


class JobEventOut(BaseModel):
    """One line of a job's history."""

    job_id: int
    queue: str
    at: float
    event: str
    attempt: int | None
    detail: str | None


class QueueOut(BaseModel):
    """A queue's settings."""

    name: str
    max_attempts: int
    visibility_timeout: float
    max_size: int | None
    paused: bool
    created_at: float
    updated_at: float


class QueueStatsOut(BaseModel):
    """Jobs of a queue by state at one moment."""

    queue: str
    waiting: int
    ready: int
    scheduled: int
    leased: int
    expired: int
    done: int
    dead: int
    paused: bool
    oldest_ready_age: float | None
    retries: int
    pending: int
    dedup_hits: int = Field(default=0, description="enqueues answered with an existing job")
    rejected_full: int = Field(default=0, description="enqueues refused by max_size")


class WorkerOut(BaseModel):
    """A registered producer or consumer process."""

    id: str
    kind: str
    host: str
    pid: int
    queues: list[str]
    state: str
    started_at: float
    heartbeat_at: float
    stopped_at: float | None
    processed: int
    failed: int


class ThroughputOut(BaseModel):
    """Counts of one queue in one time bucket."""

    queue: str
    bucket: float
    enqueued: int
    acked: int
    failed: int
    dead: int


class CountOut(BaseModel):
    """How many items an operation affected."""

    count: int


class IdsOut(BaseModel):
    """The ids an operation affected."""

    ids: list[int]


class OkOut(BaseModel):
    """The operation succeeded."""

    ok: bool = True
