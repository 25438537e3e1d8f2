"""``pq produce`` (also ``producer.py``): publish jobs from a file, stdin or a synthetic load.

Sources: a file, one message per line (``--follow`` keeps watching it; the offset is stored
in the database with each commit, so a restart never publishes a line twice, and a file
replaced or truncated and rewritten is read from its start); stdin (``--input -``); or a
synthetic load (``--rate 50/s --count 1000``). Lines are JSON or text (``--format``). Every flag
can also come from a ``PQ_*`` environment variable. A line that does not parse (``--format
json``) or that the queue refuses is logged with its line number and skipped; a full bounded
queue gets what fits, the rest waits for room. Exit codes: 0 done or stopped cleanly, 1 the
database failed, 2 bad configuration.
"""

from __future__ import annotations

import json
import sys

import click

from ..config import DEFAULT_DB_PATH
from ..errors import InvalidInput, MissingDependency, QueueError
from ..logs import setup_logging
from ..publisher import Publisher, PublishOptions, parse_rate
from ..queue import Queue
from ..signals import on_stop_signals
from ..storage.postgres.url import mask_url
from ..worker import default_worker_id
from .process_options import HELP, inherited

EXIT_ERROR, EXIT_USAGE = 1, 2


@click.command(context_settings=HELP)
@click.option("--db", envvar="PQ_DB", default=DEFAULT_DB_PATH,
              show_default=mask_url(DEFAULT_DB_PATH), show_envvar=True,
              help="Database file or postgresql:// URL.")
@click.option("--queue", "queue_name", envvar="PQ_QUEUE", required=True, show_envvar=True,
              help="Queue to publish to.")
@click.option("--input", "source", envvar="PQ_INPUT", default=None, show_envvar=True,
              help="File with one message per line, or - for stdin.")
@click.option("--follow/--no-follow", envvar="PQ_FOLLOW", default=False, show_envvar=True,
              help="Keep watching the file for new lines.")
@click.option("--format", "fmt", envvar="PQ_FORMAT", default="auto", show_default=True,
              type=click.Choice(["auto", "json", "text"]), show_envvar=True,
              help="auto: JSON when the line parses, else the text.")
@click.option("--rate", envvar="PQ_RATE", default=None, show_envvar=True,
              help="Synthetic load instead of --input, e.g. 50/s or 3000/m.")
@click.option("--count", envvar="PQ_COUNT", type=click.IntRange(min=1), default=None,
              show_envvar=True, help="Synthetic jobs to publish [default: no end].")
@click.option("--payload", envvar="PQ_PAYLOAD", default=None, show_envvar=True,
              help="JSON object merged into every synthetic job.")
@click.option("--batch", envvar="PQ_BATCH", type=click.IntRange(1, 10_000), default=500,
              show_default=True, show_envvar=True, help="Lines per transaction.")
@click.option("--priority", envvar="PQ_PRIORITY", type=int, default=0, show_default=True,
              show_envvar=True, help="Priority of every job (higher runs first).")
@click.option("--max-attempts", envvar="PQ_MAX_ATTEMPTS", type=click.IntRange(min=1),
              default=None, show_envvar=True, help="Overrides the queue's setting.")
@click.option("--offset-key", envvar="PQ_OFFSET_KEY", default=None, show_envvar=True,
              help="Name of the stored offset [default: queue and file path].")
@click.option("--log-format", envvar="PQ_LOG_FORMAT", type=click.Choice(["json", "text"]),
              default="json", show_default=True, show_envvar=True)
@click.option("--log-level", envvar="PQ_LOG_LEVEL", default="INFO", show_default=True,
              show_envvar=True)
@click.pass_context
def produce(ctx: click.Context, db: str, queue_name: str, source: str | None, follow: bool,
            fmt: str, rate: str | None, count: int | None, payload: str | None, batch: int,
            priority: int, max_attempts: int | None, offset_key: str | None, log_format: str,
            log_level: str) -> None:
    """Publish jobs to QUEUE from a file, stdin or a synthetic load."""
    db = inherited(ctx, "db", db)
    setup_logging(log_level, json_lines=log_format == "json")
    try:
        if (source is None) == (rate is None):
            raise InvalidInput("give exactly one of --input FILE|- and --rate N/s")
        per_second = parse_rate(rate) if rate is not None else 0.0
        template = json.loads(payload) if payload else None
        if template is not None and not isinstance(template, dict):
            raise InvalidInput("--payload must be a JSON object")
        options = PublishOptions(queue=queue_name, fmt=fmt, batch=batch,  # type: ignore[arg-type]
                                 priority=priority, max_attempts=max_attempts)
        q = Queue(db)
    except json.JSONDecodeError as exc:
        click.echo(f"error: --payload is not valid JSON: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    except MissingDependency as exc:
        click.echo(f"error: cannot open {mask_url(db)}: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    except InvalidInput as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    except QueueError as exc:
        click.echo(f"error: cannot open {mask_url(db)}: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    publisher = Publisher(q, options, worker_id=default_worker_id("producer"))
    try:
        with q, on_stop_signals(publisher.stop), publisher:
            if rate is not None:
                publisher.publish_synthetic(per_second, count, template)
            elif source == "-":
                publisher.publish_stream(sys.stdin.buffer)
            else:
                assert source is not None
                publisher.publish_file(source, follow=follow, key=offset_key)
    except InvalidInput as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    except QueueError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    click.echo(json.dumps({"published": publisher.published, "skipped": publisher.skipped}),
               err=True)


COMMANDS = [produce]
