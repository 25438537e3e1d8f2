"""Prometheus metrics of the API process and of the queues it serves.

Counters and the claim-latency histogram count what *this* process did; queue depth by state
is read from the database at every scrape, so it covers every producer and consumer.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..flow import Rate
from ..models import DeadLetter, Job, QueueInfo
from ..queue import Queue

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_STATES = ("waiting", "ready", "scheduled", "leased", "expired", "done", "dead")


class QueueDepthCollector(Collector):
    """``pq_queue_jobs{queue,state}`` and friends, from ``Queue.stats()`` at scrape time, and
    ``pq_queue_alert_*{queue,kind}`` from ``Queue.alerts()``."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue

    def describe(self) -> list[Metric]:
        """Nothing up front: registering must not touch the database."""
        return []

    def collect(self) -> Iterator[Metric]:
        stats = self.queue.stats()
        settings = {info.name: info for info in self.queue.list_queues()}
        depth = GaugeMetricFamily("pq_queue_jobs", "Jobs in each queue by state.",
                                  labels=["queue", "state"])
        paused = GaugeMetricFamily("pq_queue_paused", "1 if the queue is paused.",
                                   labels=["queue"])
        oldest = GaugeMetricFamily("pq_queue_oldest_ready_age_seconds",
                                   "Age of the oldest claimable job.", labels=["queue"])
        throttled = CounterMetricFamily(
            "pq_queue_throttled_claims",
            "Claims that found jobs ready but got fewer because of the queue's limits.",
            labels=["queue"])
        retrying = GaugeMetricFamily(
            "pq_queue_retry_pending_jobs",
            "Ready jobs that failed an attempt and wait for their retry.", labels=["queue"])
        held = GaugeMetricFamily("pq_queue_held_jobs",
                                 "Ready jobs the queue's limits hold back now.", labels=["queue"])
        limits = GaugeMetricFamily(
            "pq_queue_limit", "A queue's flow-control limits (rates in claims per second).",
            labels=["queue", "limit"])
        firing = GaugeMetricFamily(
            "pq_queue_alert_firing", "1 while the queue's alert of this kind fires (its value "
            "at or above its threshold), else 0.", labels=["queue", "kind"])
        threshold = GaugeMetricFamily(
            "pq_queue_alert_threshold", "The threshold of the queue's alert of this kind.",
            labels=["queue", "kind"])
        measured = GaugeMetricFamily(
            "pq_queue_alert_value", "The value the queue's alert of this kind compares.",
            labels=["queue", "kind"])
        for alert in self.queue.alerts():
            firing.add_metric([alert.queue, alert.kind], 1 if alert.firing else 0)
            threshold.add_metric([alert.queue, alert.kind], alert.threshold)
            measured.add_metric([alert.queue, alert.kind], alert.value)
        for name, item in sorted(stats.items()):
            for state in _STATES:
                depth.add_metric([name, state], getattr(item, state))
            paused.add_metric([name], 1 if item.paused else 0)
            oldest.add_metric([name], item.oldest_ready_age or 0.0)
            throttled.add_metric([name], item.throttled)
            held.add_metric([name], item.held)
            retrying.add_metric([name], item.retry_pending)
            if name in settings:
                for limit, value in _limits(settings[name]):
                    limits.add_metric([name, limit], value)
        yield depth
        yield paused
        yield oldest
        yield throttled
        yield held
        yield retrying
        yield limits
        yield firing
        yield threshold
        yield measured


def _limits(info: QueueInfo) -> Iterator[tuple[str, float]]:
    """The limits a queue has, as numbers (rates per second)."""
    for limit in ("concurrency", "group_concurrency"):
        value = getattr(info, limit)
        if value is not None:
            yield limit, float(value)
    for limit in ("rate_limit", "group_rate_limit"):
        text = getattr(info, limit)
        if text is not None:
            rate = Rate.parse(text)
            yield limit.replace("_limit", "_per_second"), rate.count / rate.period


class ApiMetrics:
    """The metrics of one app (its own registry, so several apps never collide)."""

    def __init__(self, queue: Queue) -> None:
        self.registry = CollectorRegistry()
        self.enqueued = Counter("pq_api_enqueued", "Jobs enqueued through this API process.",
                                ["queue"], registry=self.registry)
        self.claimed = Counter("pq_api_claimed", "Jobs claimed through this API process.",
                               ["queue"], registry=self.registry)
        self.acked = Counter("pq_api_acked", "Jobs acked through this API process.",
                             registry=self.registry)
        self.nacked = Counter("pq_api_nacked", "Jobs nacked through this API process.",
                              ["queue"], registry=self.registry)
        self.dead_lettered = Counter(
            "pq_api_dead_lettered", "Jobs dead-lettered by nacks through this API process.",
            ["queue"], registry=self.registry)
        self.claim_latency = Histogram(
            "pq_claim_latency_seconds",
            "Seconds from a claim request to its job (long-poll waiting included).",
            ["queue"], registry=self.registry,
            buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600))
        self.registry.register(QueueDepthCollector(queue))

    def record_claim(self, job: Job, seconds: float) -> None:
        """Count a claim that took ``seconds`` from request to job."""
        self.claimed.labels(job.queue).inc()
        self.claim_latency.labels(job.queue).observe(max(0.0, seconds))

    def record_nack(self, outcome: Job | DeadLetter) -> None:
        """Count a nack, and a dead-lettering if that is where the job went."""
        self.nacked.labels(outcome.queue).inc()
        if isinstance(outcome, DeadLetter):
            self.dead_lettered.labels(outcome.queue).inc()

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
