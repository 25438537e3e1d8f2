"""OpenTelemetry spans for enqueues and runs, linked through the jobs' headers.

An enqueue (``Queue.enqueue``, ``enqueue_many``, a task's ``delay``, ``POST /enqueue``) runs
inside a ``PRODUCER`` span ``send <queue>``, a child of the caller's current span, and writes
that span's W3C trace context into the job's headers (``traceparent``, ``tracestate``, and
``baggage`` if set, through the configured propagator). A worker runs each job inside a
``CONSUMER`` span ``process <queue>`` whose parent is the context those headers carry, so one
trace shows the request that enqueued a job and every run of it, across processes. Headers the
caller set under those names are kept as given (never overwritten).

Attributes follow the OpenTelemetry messaging conventions (``messaging.system`` is
``persistent_queue``, ``messaging.destination.name``, ``messaging.message.id``,
``messaging.operation.type`` ``send`` / ``process``), with ``persistent_queue.job.attempt``,
``persistent_queue.task.name`` and ``persistent_queue.job.outcome`` (the worker's result word:
acked, retry, failed, dead_lettered, cancelled, timed_out, crashed, lease_lost, settle_failed,
given_back).

Off, at the cost of one check per call, unless a tracer provider is set (the SDK's, by code or
``opentelemetry-instrument``): nothing here imports opentelemetry, it only looks at what the
process already imported. ``PQ_TRACING=0`` turns it off in any case.
"""

from __future__ import annotations

import contextvars
import dataclasses
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

from . import config
from .validation import encode_json

if TYPE_CHECKING:
    from .models import Job
    from .storage import NewJob

__all__ = ["active", "attached", "carrying", "context_for", "continued", "end_run",
           "instrument_app", "send", "start_run"]

#: ``messaging.system`` of every span.
SYSTEM = "persistent_queue"
#: ``PQ_TRACING=0`` (or ``false``, ``no``, ``off``) turns tracing off whatever is configured.
ENABLED = os.environ.get("PQ_TRACING", "1").strip().lower() not in ("0", "false", "no", "off")
#: Results of a run that mark its span as an error.
_ERRORS = frozenset({"failed", "dead_lettered", "timed_out", "crashed", "lease_lost",
                     "settle_failed"})
_RAISED = re.compile(r"([A-Za-z_][\w.]*):")
_NULL: AbstractContextManager[None] = nullcontext()
#: The provider last seen and its tracer (a provider is set once, but tests may swap it).
_cached: tuple[Any, Any] = (None, None)
#: A provider named by the environment, which the API loads when first asked for one.
_PROVIDER_FROM_ENV = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ
_UNSET = object()


def _tracer() -> Any:
    """The tracer of the configured provider, or None: tracing is off."""
    global _cached
    if not ENABLED:
        return None
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:  # no one imported OpenTelemetry: no provider can be set
        return None
    # The API's global, read first: while none is set, get_tracer_provider() looks the
    # environment up on every call (3.7 us an enqueue with OpenTelemetry imported, unused).
    if getattr(trace, "_TRACER_PROVIDER", _UNSET) is None and not _PROVIDER_FROM_ENV:
        return None
    provider = trace.get_tracer_provider()
    if provider is not _cached[0]:
        tracer = None  # the API's default: nothing would record the spans
        if not isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
            from . import __version__

            tracer = provider.get_tracer("persistent_queue", __version__)
        _cached = (provider, tracer)
    return _cached[1]


def active() -> bool:
    """Whether spans are recorded: a tracer provider is configured and ``PQ_TRACING`` is not
    0 (a check of well under a microsecond)."""
    return _tracer() is not None


def _otel() -> tuple[Any, Any, Any]:
    from opentelemetry import context, propagate, trace

    return context, propagate, trace


# -- producing ------------------------------------------------------------------------------


def send(queue: str, jobs: list[NewJob], store: Callable[[list[NewJob]], list[Job]],
         *, count: int | None = None) -> list[Job]:
    """``store(jobs)`` inside a producer span whose context the jobs' headers carry.

    ``count``: how many jobs ``jobs`` stands for (``enqueue_many`` stores one template).
    """
    tracer = _tracer()
    if tracer is None:
        return store(jobs)
    _, propagate, trace = _otel()
    attributes: dict[str, Any] = {
        "messaging.system": SYSTEM, "messaging.destination.name": queue,
        "messaging.operation.type": "send", "messaging.operation.name": "send"}
    many = count if count is not None else len(jobs)
    if many != 1:
        attributes["messaging.batch.message_count"] = many
    with tracer.start_as_current_span(f"send {queue}", kind=trace.SpanKind.PRODUCER,
                                      attributes=attributes) as span:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        stored = store([_with_context(job, carrier) for job in jobs])
        if many == 1 and len(stored) == 1:  # (a topic's publish stores a copy per queue)
            span.set_attribute("messaging.message.id", str(stored[0].id))
            if stored[0].deduplicated:
                span.set_attribute("persistent_queue.job.deduplicated", True)
        return stored


def _with_context(job: NewJob, carrier: dict[str, str]) -> NewJob:
    """``job`` with the trace context in its headers; a header of the caller's is kept, and
    what a job cannot carry (too many headers, too long a value) is left out."""
    headers = dict(job.headers)
    for key, value in carrier.items():
        if (key not in headers and len(headers) < config.MAX_HEADERS
                and isinstance(value, str) and len(value) <= config.MAX_HEADER_VALUE_CHARS
                and config.HEADER_KEY_PATTERN.fullmatch(key)):
            headers[key] = value
    if len(headers) == len(job.headers):
        return job
    return dataclasses.replace(job, headers=headers,
                               headers_json=encode_json(headers, where="headers"))


# -- consuming ------------------------------------------------------------------------------


def start_run(job: Job, worker: str) -> Any:
    """The consumer span of one run of ``job`` (not current anywhere yet), or None when off.

    Its parent is the trace context of the job's headers (none: a new trace)."""
    tracer = _tracer()
    if tracer is None:
        return None
    _, propagate, trace = _otel()
    from .tasks import task_name

    attributes: dict[str, Any] = {
        "messaging.system": SYSTEM, "messaging.destination.name": job.queue,
        "messaging.operation.type": "process", "messaging.operation.name": "process",
        "messaging.message.id": str(job.id), "messaging.client.id": worker,
        "persistent_queue.job.attempt": job.attempts}
    task = task_name(job)
    if task is not None:
        attributes["persistent_queue.task.name"] = task
    return tracer.start_span(f"process {job.queue}", context=propagate.extract(_carrier(job)),
                             kind=trace.SpanKind.CONSUMER, attributes=attributes)


def attached(span: Any) -> AbstractContextManager[None]:
    """Make ``span`` the current span of this thread for a ``with`` (a no-op for None)."""
    if span is None:
        return _NULL
    return _attached(_otel()[2].set_span_in_context(span))


def carrying(job: Job, span: Any) -> Job:
    """``job`` with the context of ``span`` (its run's) in its headers, for the process
    executor's child, which makes it current (:func:`continued`); ``job`` for None."""
    if span is None:
        return job
    _, propagate, trace = _otel()
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    return dataclasses.replace(job, headers={**job.headers, **carrier})


def continued(job: Job) -> AbstractContextManager[None]:
    """In the process executor's child: the context ``job``'s headers carry made current
    for a ``with`` (the handler's own spans are children of its run's span)."""
    if _tracer() is None:
        return _NULL
    return _attached(_otel()[1].extract(_carrier(job)))


def _carrier(job: Job) -> dict[str, str]:
    return {key: value for key, value in job.headers.items() if isinstance(value, str)}


@contextmanager
def _attached(ctx: Any) -> Iterator[None]:
    context = _otel()[0]
    token = context.attach(ctx)
    try:
        yield
    finally:
        context.detach(token)


def context_for(span: Any) -> contextvars.Context | None:
    """A copy of this thread's context with ``span`` current (for an asyncio task), or None."""
    if span is None:
        return None
    context, _, trace = _otel()
    copied = contextvars.copy_context()
    copied.run(context.attach, trace.set_span_in_context(span))
    return copied


def end_run(span: Any, outcome: str, error: str | None = None) -> None:
    """End a run's span with its outcome (the worker's result word) and error text."""
    if span is None:
        return
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("persistent_queue.job.outcome", outcome)
    if outcome in _ERRORS:
        first = (error or outcome).partition("\n")[0]
        raised = _RAISED.match(first)  # "Type: message" and a traceback: an exception
        span.set_attribute("error.type", raised[1] if raised else outcome)
        if raised and error:
            span.add_event("exception", {"exception.type": raised[1],
                                         "exception.message": first[raised.end():].strip(),
                                         "exception.stacktrace": error})
        span.set_status(Status(StatusCode.ERROR, first))
    span.end()


# -- the HTTP API ---------------------------------------------------------------------------


def instrument_app(app: Any) -> bool:
    """Give a FastAPI ``app`` server spans (the parents of its enqueues' spans) when tracing
    is on and ``opentelemetry-instrumentation-fastapi`` is installed; whether it has them."""
    if getattr(app, "_is_instrumented_by_opentelemetry", False):
        return True  # by opentelemetry-instrument, or a caller
    if _tracer() is None:
        return False
    try:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    except ImportError:
        return False
    FastAPIInstrumentor.instrument_app(app)
    return True
