"""The ``pq`` command line (also ``python -m persistent_queue``).

Exit codes: 0 success, 1 the operation failed (e.g. a stale lease), 2 bad usage or input,
3 nothing to do (e.g. ``dequeue`` found no job).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from . import Queue, QueueError
from .config import DEFAULT_DB_PATH
from .errors import InvalidInput

EXIT_FAILED, EXIT_USAGE, EXIT_EMPTY = 1, 2, 3


def _fail(exc: QueueError) -> None:
    click.echo(f"error: {exc}", err=True)
    sys.exit(EXIT_USAGE if isinstance(exc, InvalidInput) else EXIT_FAILED)


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", envvar="PQ_DB", default=DEFAULT_DB_PATH, show_default=True,
              help="Database file (or PQ_DB).")
@click.option("--durability", envvar="PQ_DURABILITY", type=click.Choice(["full", "normal"]),
              default="full", show_default=True, help="fsync policy (or PQ_DURABILITY).")
@click.pass_context
def cli(ctx: click.Context, db: str, durability: str) -> None:
    """persistent-queue: a crash-safe job queue in one SQLite file."""
    ctx.obj = {"db": db, "durability": durability}


def _queue(ctx: click.Context) -> Queue:
    try:
        return Queue(ctx.obj["db"], durability=ctx.obj["durability"])
    except QueueError as exc:
        _fail(exc)
        raise  # unreachable


@cli.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create the database (or migrate it to the current schema)."""
    with _queue(ctx) as q:
        click.echo(f"database {ctx.obj['db']} ready (schema version {q.schema_version()})")


@cli.command()
@click.argument("queue")
@click.argument("payload")
@click.option("--priority", type=int, default=0, show_default=True)
@click.option("--delay", type=float, default=0, show_default=True, help="Seconds before it runs.")
@click.pass_context
def enqueue(ctx: click.Context, queue: str, payload: str, priority: int, delay: float) -> None:
    """Enqueue PAYLOAD (JSON, or plain text taken as a string) on QUEUE."""
    try:
        value: Any = json.loads(payload)
    except json.JSONDecodeError:
        value = payload
    with _queue(ctx) as q:
        try:
            job = q.enqueue(queue, value, priority=priority, delay=delay)
        except QueueError as exc:
            _fail(exc)
        _print_json(job.to_dict())


@cli.command()
@click.argument("queue", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def stats(ctx: click.Context, queue: str | None, as_json: bool) -> None:
    """Jobs per state, for every queue or one."""
    with _queue(ctx) as q:
        try:
            found = q.stats() if queue is None else {queue: q.stats(queue)}
        except QueueError as exc:
            _fail(exc)
    rows = [s.to_dict() for s in found.values()]
    if as_json:
        _print_json(rows)
        return
    columns = ["queue", "waiting", "ready", "scheduled", "leased", "done", "dead", "paused"]
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) if rows else len(c)
              for c in columns}
    click.echo("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        click.echo("  ".join(str(row[c]).ljust(widths[c]) for c in columns))


def main() -> None:
    """Entry point of the ``pq`` console script."""
    cli(prog_name="pq")
