"""``pq dlq list | redrive | purge``: the dead-letter table."""

from __future__ import annotations

import click

from ..durations import parse_duration
from ..errors import InvalidInput
from .common import EXIT_USAGE, fail, json_option, open_queue, print_json, table, when


@click.group()
def dlq() -> None:
    """Inspect, redrive and purge dead-lettered jobs."""


@dlq.command("list")
@click.option("--queue", default=None)
@click.option("--limit", type=int, default=50, show_default=True)
@json_option
@click.pass_context
def list_dead(ctx: click.Context, queue: str | None, limit: int, as_json: bool) -> None:
    """Dead letters, newest first."""
    with open_queue(ctx) as q:
        found = q.dead_letters(queue, limit=limit)
    if as_json:
        print_json([letter.to_dict() for letter in found])
        return
    rows = [{"id": d.id, "queue": d.queue, "attempts": d.attempts, "dead_at": when(d.dead_at),
             "reason": d.reason, "last_error": (d.last_error or "").splitlines()[0][:60]
             if d.last_error else None} for d in found]
    table(rows, ["id", "queue", "attempts", "dead_at", "reason", "last_error"])


@dlq.command()
@click.argument("job_id", type=int, required=False)
@click.option("--queue", default=None, help="Redrive every dead letter of this queue.")
@click.pass_context
def redrive(ctx: click.Context, job_id: int | None, queue: str | None) -> None:
    """Move JOB_ID (or all of --queue) back to its queue with attempts reset."""
    if (job_id is None) == (queue is None):
        fail("give either a JOB_ID or --queue", EXIT_USAGE)
    with open_queue(ctx) as q:
        moved = q.redrive(job_id if job_id is not None else str(queue))
    click.echo(f"redrove {len(moved)} job(s)")


@dlq.command()
@click.option("--queue", default=None, help="Only this queue's dead letters.")
@click.option("--older-than", default="0", show_default=True,
              help="Only those dead longer than this (e.g. 30d).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def purge(ctx: click.Context, queue: str | None, older_than: str, yes: bool) -> None:
    """Delete dead letters for good."""
    try:
        age = parse_duration(older_than, name="--older-than")
    except InvalidInput as exc:
        fail(str(exc), EXIT_USAGE)
    if not yes:
        click.confirm(f"delete dead letters of {queue or 'every queue'} for good?", abort=True)
    with open_queue(ctx) as q:
        removed = q.purge_dead_letters(queue, older_than=age)
    click.echo(f"purged {removed} dead letter(s)")


COMMANDS = [dlq]
