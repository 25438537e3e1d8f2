"""The ``pq`` command line (also ``python -m persistent_queue``).

Exit codes: 0 success, 1 the operation failed (e.g. a stale lease, an unhealthy database, no
such schedule, a topic without subscribers), 2 bad usage or input (e.g. an invalid
dependency), 3 nothing to do (e.g. ``dequeue`` found no job), 4 the queue is full (retry
later). Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import sys

import click

from .commands import register
from .commands.common import EXIT_EMPTY, EXIT_FAILED, EXIT_FULL, EXIT_USAGE, open_queue
from .config import DEFAULT_DB_PATH
from .storage.postgres.url import mask_url

__all__ = ["EXIT_EMPTY", "EXIT_FAILED", "EXIT_FULL", "EXIT_USAGE", "cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", envvar="PQ_DB", default=DEFAULT_DB_PATH,
              show_default=mask_url(DEFAULT_DB_PATH),
              help="Database file or postgresql:// URL (or PQ_DB).")
@click.option("--durability", envvar="PQ_DURABILITY", type=click.Choice(["full", "normal"]),
              default="full", show_default=True, help="fsync policy (or PQ_DURABILITY).")
@click.pass_context
def cli(ctx: click.Context, db: str, durability: str) -> None:
    """persistent-queue: a crash-safe job queue in one SQLite file."""
    ctx.obj = {"db": db, "durability": durability}


@cli.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create the database (or migrate it to the current schema)."""
    with open_queue(ctx, create=True) as q:
        click.echo(f"database {mask_url(ctx.obj['db'])} ready "
                   f"(schema version {q.schema_version()})")


register(cli)


def main() -> None:
    """Entry point of the ``pq`` console script."""
    try:
        cli(prog_name="pq")
    except Exception as exc:  # a bug must still not print a traceback at an operator
        click.echo(f"error: unexpected {type(exc).__name__}: {exc}", err=True)
        sys.exit(EXIT_FAILED)
