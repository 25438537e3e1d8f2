"""``pq janitor`` (also ``scripts/cleanup.py``): delete old done jobs and dead letters, once or
on a schedule.

    pq janitor --older-than 7d [--dead-older-than 30d] [--workers-older-than 7d] [--vacuum]
               [--every 3600]

Durations are seconds or a number with s, m, h or d. With ``--every`` it repeats until
SIGTERM/SIGINT (what supervisord's ``janitor`` program runs). Exit codes: 0 done, 1 the
database failed, 2 bad arguments.
"""

from __future__ import annotations

import json
import logging
import sys
import threading

import click

from ..config import DEFAULT_DB_PATH, WORKER_RETENTION
from ..durations import parse_duration
from ..errors import InvalidInput, MissingDependency, QueueError
from ..logs import setup_logging
from ..queue import Queue
from ..signals import on_stop_signals
from ..storage.postgres.url import mask_url
from .process_options import HELP, inherited

logger = logging.getLogger("janitor")


def run_once(q: Queue, older_than: float, dead_older_than: float | None, vacuum: bool,
             workers_older_than: float = WORKER_RETENTION) -> None:
    """One pass; logs what it removed."""
    removed = q.cleanup(older_than, vacuum=vacuum)
    purged = q.purge_dead_letters(older_than=dead_older_than) if dead_older_than else 0
    pruned = q.prune_workers(workers_older_than)
    counts = {"done_jobs_removed": removed, "dead_letters_removed": purged,
              "workers_removed": pruned}
    logger.info("cleanup done", extra={**counts, "vacuum": vacuum})
    click.echo(json.dumps(counts))
    reserve = getattr(getattr(q.backend, "dialect", None), "reserve", None)  # SQLite: room
    # kept for claims and acks
    if reserve is not None and not reserve.ensure():
        click.echo(f"warning: the disk holding {reserve.path.parent} is still too full for "
                   "new jobs: enqueues stay refused (claims and acks go on) until more space "
                   "is freed", err=True)


@click.command(context_settings=HELP)
@click.option("--db", envvar="PQ_DB", default=DEFAULT_DB_PATH,
              show_default=mask_url(DEFAULT_DB_PATH), show_envvar=True,
              help="Database file or postgresql:// URL.")
@click.option("--older-than", default="7d", show_default=True,
              help="Delete done jobs finished longer ago than this.")
@click.option("--dead-older-than", default=None, help="Also delete dead letters this old.")
@click.option("--workers-older-than", default="7d", show_default=True,
              help="Forget stopped and lost workers last heard of longer ago than this.")
@click.option("--vacuum", is_flag=True, help="Return freed pages to the file system.")
@click.option("--every", default=None, help="Repeat at this interval until stopped.")
@click.pass_context
def janitor(ctx: click.Context, db: str, older_than: str, dead_older_than: str | None,
            workers_older_than: str, vacuum: bool, every: str | None) -> None:
    """Delete old done jobs (and dead letters) and forget old stopped and lost workers, once
    or --every interval."""
    db = inherited(ctx, "db", db)
    setup_logging()
    try:
        age = parse_duration(older_than, name="--older-than")
        dead_age = None if dead_older_than is None else parse_duration(
            dead_older_than, name="--dead-older-than")
        workers_age = parse_duration(workers_older_than, name="--workers-older-than")
        interval = None if every is None else parse_duration(every, name="--every")
        if interval is not None and interval <= 0:
            raise InvalidInput("--every must be more than 0")
    except InvalidInput as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    stop = threading.Event()
    try:
        with Queue(db) as q, on_stop_signals(lambda signum: stop.set()):
            while True:
                run_once(q, age, dead_age, vacuum, workers_age)
                if interval is None or stop.wait(interval):
                    break
    except QueueError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2 if isinstance(exc, MissingDependency) else 1)


COMMANDS = [janitor]
