"""``pq dlq list | edit | redrive | purge``: the dead-letter table."""

from __future__ import annotations

import json
from typing import Any

import click

from .common import (
    EXIT_USAGE,
    fail,
    json_option,
    open_queue,
    parse_duration_arg,
    parse_json_arg,
    print_json,
    table,
    when,
)


@click.group()
def dlq() -> None:
    """Inspect, edit, redrive and purge dead-lettered jobs."""


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


def _headers_arg(text: str) -> dict[str, Any] | None:
    """``--headers``: a JSON object, or ``null`` to remove the headers."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        fail(f"--headers must be a JSON object (or null), not {text[:80]!r}", EXIT_USAGE)
    if value is not None and not isinstance(value, dict):
        fail(f"--headers must be a JSON object (or null), not {type(value).__name__}",
             EXIT_USAGE)
    return value


@dlq.command()
@click.argument("job_id", type=int)
@click.option("--payload", default=None, metavar="JSON",
              help="The new payload (JSON, or plain text taken as a string).")
@click.option("--headers", "headers_text", default=None, metavar="JSON",
              help="The new headers: a JSON object, or null to remove them.")
@click.option("--priority", type=int, default=None, help="The new priority.")
@click.pass_context
def edit(ctx: click.Context, job_id: int, payload: str | None, headers_text: str | None,
         priority: int | None) -> None:
    """Change dead letter JOB_ID before redriving it; prints it as JSON.

    What is not given stays as it is. The payload and headers are checked as an enqueue
    checks them (exit 2 if refused); exit 1 if JOB_ID is no dead letter.
    """
    changes: dict[str, Any] = {}
    if payload is not None:
        changes["payload"] = parse_json_arg(payload)
    if headers_text is not None:
        changes["headers"] = _headers_arg(headers_text)
    if priority is not None:
        changes["priority"] = priority
    if not changes:
        fail("give at least one of --payload, --headers, --priority", EXIT_USAGE)
    with open_queue(ctx) as q:
        letter = q.edit_dead_letter(job_id, **changes)
    print_json(letter.to_dict())


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
    age = parse_duration_arg(older_than, name="--older-than")
    if not yes:
        click.confirm(f"delete dead letters of {queue or 'every queue'} for good?", abort=True)
    with open_queue(ctx) as q:
        removed = q.purge_dead_letters(queue, older_than=age)
    click.echo(f"purged {removed} dead letter(s)")


COMMANDS = [dlq]
