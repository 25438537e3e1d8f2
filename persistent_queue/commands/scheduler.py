"""``pq scheduler`` (also ``python -m persistent_queue.scheduler``): fire recurring schedules.

Exit codes: 0 stopped by SIGTERM/SIGINT, 1 the database cannot be used, 2 bad arguments.
"""

from __future__ import annotations

import sys

import click

from .. import config
from ..scheduler import serve
from ..storage.postgres.url import mask_url
from .process_options import HELP, inherited


@click.command(context_settings=HELP)
@click.option("--db", envvar="PQ_DB", default=config.DEFAULT_DB_PATH,
              show_default=mask_url(config.DEFAULT_DB_PATH), show_envvar=True,
              help="Database file or postgresql:// URL.")
@click.option("--interval", type=click.FloatRange(0, 3600, min_open=True),
              default=config.SCHEDULER_INTERVAL, show_default=True,
              help="Longest sleep between passes, seconds.")
@click.pass_context
def scheduler(ctx: click.Context, db: str, interval: float) -> None:
    """Fire recurring schedules (pq schedules add ...) until SIGTERM/SIGINT."""
    sys.exit(serve(inherited(ctx, "db", db), interval))


COMMANDS = [scheduler]
