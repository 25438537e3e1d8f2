"""Tracing across processes: this process enqueues inside a span, a real ``pq worker``
process (whose app configures the OpenTelemetry SDK, exporting spans as JSON lines) runs the
jobs; each run's consumer span is in the producer's trace, its child, and the handler's own
spans (in the worker, on its event loop, or in a process executor's child) are the run's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from persistent_queue import Queue
from tests.support import wait_for
from tests.task_apps import Workers, task, task_app
from tests.tracing_support import configured_sdk, named

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

APP = '''
import json
import os

from opentelemetry import trace

from persistent_queue import Queue

q = Queue(os.environ["TASKAPP_DB"])

if os.environ.get("TASKAPP_TRACE"):  # the worker's processes only, not the test's
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        SimpleSpanProcessor, SpanExporter, SpanExportResult)

    class JsonLines(SpanExporter):
        def export(self, spans):
            lines = "".join(json.dumps({
                "name": s.name, "kind": s.kind.name, "pid": os.getpid(),
                "trace_id": f"{s.context.trace_id:032x}", "span_id": f"{s.context.span_id:016x}",
                "parent": f"{s.parent.span_id:016x}" if s.parent else None,
                "attributes": dict(s.attributes), "status": s.status.status_code.name,
                "events": [e.name for e in s.events]}) + "\\n" for s in spans)
            with open(os.path.join(os.environ["TASKAPP_DIR"], "spans.jsonl"), "a") as out:
                out.write(lines)
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(JsonLines()))
    trace.set_tracer_provider(provider)

tracer = trace.get_tracer("taskapp")


@q.task(queue="traced", name="greet")
def greet(name):
    with tracer.start_as_current_span("greeting"):
        return "hello " + name


@q.task(queue="traced", name="explode", max_attempts=1)
def explode():
    raise RuntimeError("kaboom")


@q.task(queue="traced", name="agreet")
async def agreet(name):
    with tracer.start_as_current_span("async greeting"):
        return "hello " + name
'''


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """An SDK tracer provider for this test (tracing on); its finished spans."""
    yield from configured_sdk()


@pytest.fixture
def app(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    yield from task_app(APP, tmp_path, db_url, monkeypatch)


def exported(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "spans.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def runs_exported(tmp_path: Path, count: int) -> dict[str, dict[str, Any]]:
    """The consumer spans of the worker, by job id, once ``count`` are there."""
    def runs() -> dict[str, dict[str, Any]]:
        found = {s["attributes"]["messaging.message.id"]: s for s in exported(tmp_path)
                 if s["kind"] == "CONSUMER"}
        return found if len(found) >= count else {}
    return wait_for(runs, timeout=60, message=f"{count} consumer spans")


def enqueue_in_a_request(app: Queue, spans: InMemorySpanExporter,
                         names: list[str]) -> dict[str, tuple[str, str]]:
    """Each task's job enqueued in one request span: job id -> (trace id, producer span id)."""
    jobs = {}
    with trace.get_tracer("test").start_as_current_span("request"):
        for name in names:
            jobs[name] = (task(app, name).delay("you") if name != "explode"
                          else task(app, name).delay()).job.id
    sends = {str((s.attributes or {})["messaging.message.id"]): s
             for s in named(spans, "send traced")}
    return {name: (f"{sends[str(job_id)].context.trace_id:032x}",
                   f"{sends[str(job_id)].context.span_id:016x}")
            for name, job_id in jobs.items()}


def check_run(run: dict[str, Any], producer: tuple[str, str], task_name: str) -> None:
    assert (run["trace_id"], run["parent"]) == producer
    attributes = run["attributes"]
    assert attributes["messaging.system"] == "persistent_queue"
    assert attributes["messaging.destination.name"] == "traced"
    assert attributes["messaging.operation.type"] == "process"
    assert attributes["persistent_queue.task.name"] == task_name
    assert attributes["persistent_queue.job.attempt"] == 1


def test_a_worker_process_continues_the_producers_trace(
        app: Queue, spans: InMemorySpanExporter, workers: Workers, tmp_path: Path) -> None:
    producers = enqueue_in_a_request(app, spans, ["greet", "explode", "agreet"])
    workers.env["TASKAPP_TRACE"] = "1"
    workers.start("--queues", "traced", "--concurrency", "2")
    runs = runs_exported(tmp_path, 3)
    by_task = {run["attributes"]["persistent_queue.task.name"]: run for run in runs.values()}
    for name, producer in producers.items():
        check_run(by_task[name], producer, name)
    assert by_task["greet"]["attributes"]["persistent_queue.job.outcome"] == "acked"
    assert by_task["agreet"]["attributes"]["persistent_queue.job.outcome"] == "acked"
    failed = by_task["explode"]
    assert failed["attributes"]["persistent_queue.job.outcome"] == "dead_lettered"
    assert failed["attributes"]["error.type"] == "RuntimeError"
    assert failed["status"] == "ERROR" and failed["events"] == ["exception"]
    # The handlers' own spans (sync and async tasks) are children of their runs' spans.
    inner = {s["name"]: s for s in exported(tmp_path) if s["kind"] == "INTERNAL"}
    assert inner["greeting"]["parent"] == by_task["greet"]["span_id"]
    assert inner["async greeting"]["parent"] == by_task["agreet"]["span_id"]


@pytest.mark.sqlite_only  # the executor's path; the headers' path is shared and runs above
def test_the_process_executor_continues_the_trace_too(
        app: Queue, spans: InMemorySpanExporter, workers: Workers, tmp_path: Path) -> None:
    producers = enqueue_in_a_request(app, spans, ["greet", "explode"])
    workers.env["TASKAPP_TRACE"] = "1"
    worker = workers.start("--queues", "traced", "--executor", "process")
    runs = runs_exported(tmp_path, 2)
    by_task = {run["attributes"]["persistent_queue.task.name"]: run for run in runs.values()}
    for name, producer in producers.items():
        check_run(by_task[name], producer, name)
        assert by_task[name]["pid"] == worker.pid  # the span is the worker's, not the child's
    assert by_task["greet"]["attributes"]["persistent_queue.job.outcome"] == "acked"
    assert by_task["explode"]["attributes"]["persistent_queue.job.outcome"] == "dead_lettered"
    # The child's own spans are children of the run's span, in the child's process.
    [inner] = [s for s in exported(tmp_path) if s["name"] == "greeting"]
    assert inner["parent"] == by_task["greet"]["span_id"]
    assert inner["trace_id"] == by_task["greet"]["trace_id"]
    assert inner["pid"] != worker.pid
