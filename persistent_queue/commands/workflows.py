"""``pq topics ...`` and ``pq schedules ...``: publish/subscribe and recurring jobs."""

from __future__ import annotations

import click

from ..models import ScheduleInfo
from .common import (
    EXIT_USAGE,
    fail,
    json_option,
    open_queue,
    parse_headers,
    parse_json_arg,
    parse_time,
    print_json,
    table,
    when,
)


@click.group()
def topics() -> None:
    """Subscribe queues to topics and publish to every subscriber at once."""


@topics.command()
@click.argument("topic")
@click.argument("queue")
@click.pass_context
def subscribe(ctx: click.Context, topic: str, queue: str) -> None:
    """Deliver a copy of every job published to TOPIC into QUEUE."""
    with open_queue(ctx, create=True) as q:
        added = q.subscribe(topic, queue=queue)
    click.echo(f"{queue!r} {'subscribed to' if added else 'was already subscribed to'} {topic!r}")


@topics.command()
@click.argument("topic")
@click.argument("queue")
@click.pass_context
def unsubscribe(ctx: click.Context, topic: str, queue: str) -> None:
    """Stop delivering TOPIC into QUEUE (exit 1 if it was not subscribed)."""
    with open_queue(ctx) as q:
        removed = q.unsubscribe(topic, queue=queue)
    if not removed:
        fail(f"{queue!r} is not subscribed to {topic!r}")
    click.echo(f"{queue!r} unsubscribed from {topic!r}")


@topics.command("list")
@click.argument("topic", required=False)
@json_option
@click.pass_context
def list_subscriptions(ctx: click.Context, topic: str | None, as_json: bool) -> None:
    """Subscriptions of every topic, or of TOPIC."""
    with open_queue(ctx) as q:
        found = q.subscriptions(topic)
    if as_json:
        print_json([s.to_dict() for s in found])
        return
    table([{"topic": s.topic, "queue": s.queue, "since": when(s.created_at)} for s in found],
          ["topic", "queue", "since"])


@topics.command()
@click.argument("topic")
@click.argument("payload")
@click.option("--priority", type=int, default=0, show_default=True)
@click.option("--delay", type=float, default=0, show_default=True, help="Seconds before it runs.")
@click.option("--max-attempts", type=int, default=None)
@click.option("--header", "header_pairs", multiple=True, metavar="KEY=VALUE",
              help="A header (repeatable).")
@click.option("--dedup-key", default=None, help="Per-queue dedup key of every copy.")
@click.pass_context
def publish(ctx: click.Context, topic: str, payload: str, priority: int, delay: float,
            max_attempts: int | None, header_pairs: tuple[str, ...],
            dedup_key: str | None) -> None:
    """Put a copy of PAYLOAD into every queue subscribed to TOPIC (exit 1 if none is)."""
    headers = parse_headers(header_pairs)
    with open_queue(ctx, create=True) as q:
        jobs = q.publish(topic, parse_json_arg(payload), headers=headers or None,
                         priority=priority, delay=delay, max_attempts=max_attempts,
                         dedup_key=dedup_key)
    print_json([{"id": job.id, "queue": job.queue, "deduplicated": job.deduplicated}
                for job in jobs])


@click.group()
def schedules() -> None:
    """Recurring jobs, fired by the scheduler process (pq scheduler)."""


def _row(info: ScheduleInfo) -> dict[str, object]:
    return {"name": info.name, "queue": info.queue,
            "when": f"every {info.every:g}s" if info.every is not None
            else f"cron {info.cron} ({info.timezone})",
            "next_run": "finished" if info.finished else when(info.next_run_at),
            "last_run": when(info.last_run_at), "runs": info.runs, "missed": info.missed}


@schedules.command()
@click.argument("name")
@click.argument("queue")
@click.argument("payload")
@click.option("--every", type=float, default=None, help="Seconds between runs.")
@click.option("--cron", default=None, help="A cron expression, e.g. '*/5 * * * *'.")
@click.option("--timezone", default="UTC", show_default=True, help="Zone the cron is read in.")
@click.option("--start-at", default=None, metavar="TIME",
              help="First run (epoch seconds or ISO 8601) [default: one period from now].")
@click.option("--priority", type=int, default=0, show_default=True)
@click.option("--max-attempts", type=int, default=None)
@click.option("--header", "header_pairs", multiple=True, metavar="KEY=VALUE",
              help="A header of every job (repeatable).")
@click.pass_context
def add(ctx: click.Context, name: str, queue: str, payload: str, every: float | None,
        cron: str | None, timezone: str, start_at: str | None, priority: int,
        max_attempts: int | None, header_pairs: tuple[str, ...]) -> None:
    """Enqueue PAYLOAD into QUEUE on a schedule called NAME (--every or --cron).

    Adding an existing NAME replaces it.
    """
    if (every is None) == (cron is None):
        fail("give exactly one of --every or --cron", EXIT_USAGE)
    headers = parse_headers(header_pairs)
    first = None if start_at is None else parse_time(start_at, name="--start-at")
    with open_queue(ctx, create=True) as q:
        info = q.schedule(queue, parse_json_arg(payload), every=every, cron=cron, name=name,
                          headers=headers or None, priority=priority,
                          max_attempts=max_attempts, start_at=first, timezone=timezone)
    print_json(info.to_dict())


@schedules.command("list")
@json_option
@click.pass_context
def list_schedules(ctx: click.Context, as_json: bool) -> None:
    """Every schedule with its next and last run ("finished": its cron has no tick left)."""
    with open_queue(ctx) as q:
        found = q.list_schedules()
    if as_json:
        print_json([info.to_dict() for info in found])
        return
    table([_row(info) for info in found],
          ["name", "queue", "when", "next_run", "last_run", "runs", "missed"])


@schedules.command()
@click.argument("name")
@click.pass_context
def remove(ctx: click.Context, name: str) -> None:
    """Delete schedule NAME (jobs it already enqueued stay; exit 1 if there is none)."""
    with open_queue(ctx) as q:
        q.unschedule(name)
    click.echo(f"schedule {name!r} removed")


@schedules.command("run-due")
@click.pass_context
def run_due(ctx: click.Context) -> None:
    """Fire every schedule that is due now, once (what the scheduler process does)."""
    with open_queue(ctx) as q:
        jobs = q.run_due_schedules()
    for job in jobs:
        click.echo(f"fired {job.headers.get('schedule')} -> {job.queue} job {job.id}")
    click.echo(f"{len(jobs)} schedule(s) fired")


COMMANDS = [topics, schedules]
