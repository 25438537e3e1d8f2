"""OpenTelemetry tracing in one process: producer spans and the headers that carry their
context, consumer spans of the worker (thread executor), the HTTP API's request spans as the
enqueue spans' parents, and nothing at all without a configured tracer provider."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from persistent_queue import AsyncQueue, Job, JobState, Queue, QueueFull, tracing
from persistent_queue.api import create_app
from persistent_queue.worker import EXIT_OK, Worker, WorkerConfig
from tests.tracing_support import configured_sdk, named, traceparent_of

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """An SDK tracer provider for this test (tracing on); its finished spans."""
    yield from configured_sdk()


def run_worker(q: Queue, handler: Any, tmp_path: Path, jobs: int) -> None:
    config = WorkerConfig(queue="work", max_jobs=jobs, log_dir=str(tmp_path / "logs"), wait=0.2)
    assert Worker(q, config, handler).run() == EXIT_OK


def test_without_a_tracer_provider_no_header_is_added_and_no_span_made(queue: Queue) -> None:
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("request"):
        job = queue.enqueue("work", 1, headers={"k": "v"})
        batch = queue.enqueue_many("work", [1, 2])
    assert job.headers == {"k": "v"}
    assert [j.headers for j in batch] == [{}, {}]
    assert queue.get_job(job.id).headers == {"k": "v"}


def test_pq_tracing_0_turns_it_off(queue: Queue, spans: InMemorySpanExporter,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracing, "ENABLED", False)
    job = queue.enqueue("work", 1)
    assert job.headers == {}
    assert spans.get_finished_spans() == ()


def test_enqueue_is_a_producer_span_whose_context_the_job_carries(
        queue: Queue, spans: InMemorySpanExporter) -> None:
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("request") as request:
        job = queue.enqueue("work", {"n": 1}, headers={"k": "v"})
    [send] = named(spans, "send work")
    assert send.kind is SpanKind.PRODUCER
    assert send.parent is not None
    assert send.parent.span_id == request.get_span_context().span_id
    assert dict(send.attributes or {}) == {
        "messaging.system": "persistent_queue", "messaging.destination.name": "work",
        "messaging.operation.type": "send", "messaging.operation.name": "send",
        "messaging.message.id": str(job.id)}
    stored = queue.get_job(job.id).headers
    assert stored == {"k": "v", "traceparent": traceparent_of(send)}
    assert job.headers == stored


def test_a_traceparent_of_the_callers_own_is_kept(queue: Queue,
                                                  spans: InMemorySpanExporter) -> None:
    job = queue.enqueue("work", 1, headers={"traceparent": TRACEPARENT})
    assert queue.get_job(job.id).headers == {"traceparent": TRACEPARENT}
    assert len(named(spans, "send work")) == 1


def test_a_job_with_all_its_headers_taken_is_stored_without_the_context(
        queue: Queue, spans: InMemorySpanExporter) -> None:
    full = {f"h{i}": i for i in range(64)}
    job = queue.enqueue("work", 1, headers=full)
    assert queue.get_job(job.id).headers == full


class _HostilePropagator(TraceContextTextMapPropagator):
    """Writes, besides the trace context, what no job header may hold."""

    def inject(self, carrier: Any, context: Any = None, setter: Any = None) -> None:
        super().inject(carrier, context)
        carrier.update({"bad key!": "x", "long": "x" * 5000, "number": 7})

    @property
    def fields(self) -> set[str]:
        return {"traceparent", "tracestate", "bad key!", "long", "number"}


def test_what_a_propagator_writes_that_no_header_may_hold_is_left_out(
        queue: Queue, spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(propagate, "_HTTP_TEXT_FORMAT", _HostilePropagator())
    job = queue.enqueue("work", 1)
    [send] = named(spans, "send work")
    assert queue.get_job(job.id).headers == {"traceparent": traceparent_of(send)}


def test_enqueue_many_and_a_tasks_delay_are_one_span_each(
        queue: Queue, spans: InMemorySpanExporter) -> None:
    @queue.task(queue="work", name="double")
    def double(n: int) -> int:
        return 2 * n

    jobs = queue.enqueue_many("work", [1, 2, 3])
    [send] = named(spans, "send work")
    assert (send.attributes or {})["messaging.batch.message_count"] == 3
    assert "messaging.message.id" not in (send.attributes or {})
    assert {queue.get_job(j.id).headers["traceparent"] for j in jobs} == {traceparent_of(send)}
    delayed = double.delay(4)
    assert len(named(spans, "send work")) == 2
    assert "traceparent" in queue.get_job(delayed.job.id).headers


def test_a_topics_publish_is_one_span_whose_context_every_copy_carries(
        queue: Queue, spans: InMemorySpanExporter) -> None:
    queue.subscribe("orders", queue="billing")
    queue.subscribe("orders", queue="shipping")
    copies = queue.publish("orders", {"id": 7})
    [send] = named(spans, "send orders")
    assert send.kind is SpanKind.PRODUCER
    assert "messaging.message.id" not in (send.attributes or {})
    assert [queue.get_job(c.id).headers for c in copies] == [
        {"traceparent": traceparent_of(send)}] * 2


def test_an_async_queues_enqueue_is_a_child_of_the_awaiting_span(
        db_path: Path | str, spans: InMemorySpanExporter) -> None:
    async def main() -> None:
        async with AsyncQueue(db_path, durability="normal") as aq:
            with trace.get_tracer("test").start_as_current_span("request"):
                await aq.enqueue("work", 1)

    asyncio.run(main())
    [request] = named(spans, "request")
    [send] = named(spans, "send work")
    assert send.parent is not None and send.parent.span_id == request.context.span_id


def test_a_failed_enqueue_records_its_error(queue: Queue, spans: InMemorySpanExporter) -> None:
    queue.create_queue("small", max_size=1)
    queue.enqueue("small", 1)
    with pytest.raises(QueueFull):
        queue.enqueue("small", 2)
    failed = named(spans, "send small")[-1]
    assert failed.status.status_code is StatusCode.ERROR
    assert [event.name for event in failed.events] == ["exception"]


def test_the_worker_runs_each_job_in_a_consumer_span_child_of_its_producer(
        real_queue: Queue, spans: InMemorySpanExporter, tmp_path: Path) -> None:
    tracer = trace.get_tracer("test")
    ok = real_queue.enqueue("work", "ok")
    bad = real_queue.enqueue("work", "bad", max_attempts=1)
    inner: dict[int, Any] = {}

    def handler(job: Job) -> None:
        with tracer.start_as_current_span("inside") as span:
            inner[job.id] = span.get_span_context().span_id
        if job.payload == "bad":
            raise ValueError("bad payload")

    run_worker(real_queue, handler, tmp_path, jobs=2)
    sends = {int((s.attributes or {})["messaging.message.id"]): s
             for s in named(spans, "send work")}
    runs = {int((s.attributes or {})["messaging.message.id"]): s
            for s in named(spans, "process work")}
    assert set(runs) == {ok.id, bad.id}
    for job_id, run in runs.items():
        assert run.kind is SpanKind.CONSUMER
        assert run.parent is not None and run.parent.is_remote
        assert run.parent.span_id == sends[job_id].get_span_context().span_id
        assert run.context.trace_id == sends[job_id].context.trace_id
        assert (run.attributes or {})["persistent_queue.job.attempt"] == 1
        [child] = [s for s in named(spans, "inside") if s.context.span_id == inner[job_id]]
        assert child.parent is not None and child.parent.span_id == run.context.span_id
    assert (runs[ok.id].attributes or {})["persistent_queue.job.outcome"] == "acked"
    assert runs[ok.id].status.status_code is StatusCode.UNSET
    failed = runs[bad.id]
    assert (failed.attributes or {})["persistent_queue.job.outcome"] == "dead_lettered"
    assert (failed.attributes or {})["error.type"] == "ValueError"
    assert failed.status.status_code is StatusCode.ERROR
    [event] = failed.events
    assert (event.attributes or {})["exception.message"] == "bad payload"
    assert real_queue.get_job(ok.id).state is JobState.DONE


def test_a_run_past_its_timeout_ends_its_span_timed_out(
        real_queue: Queue, spans: InMemorySpanExporter, tmp_path: Path) -> None:
    release = threading.Event()
    job = real_queue.enqueue("work", 1, timeout=0.2, max_attempts=2)
    try:
        run_worker(real_queue, lambda job: release.wait(30), tmp_path, jobs=1)
    finally:
        release.set()  # the abandoned handler's thread
    [run] = named(spans, "process work")
    attributes = run.attributes or {}
    assert attributes["persistent_queue.job.outcome"] == "timed_out"
    assert attributes["error.type"] == "timed_out"
    assert run.status.status_code is StatusCode.ERROR
    assert run.status.description == "timed out after 0.2 s"
    assert real_queue.get_job(job.id).state is JobState.READY


def test_a_job_enqueued_without_context_starts_a_trace_of_its_own(
        real_queue: Queue, tmp_path: Path, spans: InMemorySpanExporter) -> None:
    job = real_queue.enqueue("work", 1, headers={"traceparent": "not a trace context"})
    run_worker(real_queue, lambda job: None, tmp_path, jobs=1)
    [run] = named(spans, "process work")
    assert run.parent is None
    assert (run.attributes or {})["messaging.message.id"] == str(job.id)


def test_the_apis_request_span_is_the_parent_of_the_enqueue_span(
        real_queue: Queue, spans: InMemorySpanExporter) -> None:
    with TestClient(create_app(real_queue)) as client:
        response = client.post("/enqueue", json={"queue": "work", "payload": 1})
    assert response.status_code == 201, response.text
    [send] = named(spans, "send work")
    [request] = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert send.parent is not None and send.parent.span_id == request.context.span_id
    job_id = response.json()["id"]
    assert real_queue.get_job(job_id).headers["traceparent"] == traceparent_of(send)
