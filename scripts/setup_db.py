"""Create or migrate the database; ``--demo`` also creates the demo's queues and input file.

    python scripts/setup_db.py [--db data/queue.db] [--demo]

Safe to run again: existing queues and jobs are left as they are. Exit codes: 0 ready,
1 the database could not be opened or migrated, 2 bad arguments.
"""

from __future__ import annotations

import sys
from pathlib import Path

import _common  # noqa: F401
import click

from persistent_queue import Queue, QueueError
from persistent_queue.config import DEFAULT_DB_PATH
from persistent_queue.storage.postgres.url import is_postgres_url, mask_url

#: Queues of the demo started by `make run`: (name, max_attempts, visibility_timeout).
DEMO_QUEUES = [("emails", 3, 30.0), ("reports", 5, 120.0)]


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", envvar="PQ_DB", default=DEFAULT_DB_PATH,
              show_default=mask_url(DEFAULT_DB_PATH), help="Database file or postgresql:// URL.")
@click.option("--demo", is_flag=True, help="Create the demo queues and data/input.txt.")
def main(db: str, demo: bool) -> None:
    """Create or migrate the database at DB."""
    try:
        with Queue(db) as q:
            if demo:
                for name, attempts, timeout in DEMO_QUEUES:
                    q.create_queue(name, max_attempts=attempts, visibility_timeout=timeout,
                                   exist_ok=True)
                folder = Path("data") if is_postgres_url(db) else Path(db).resolve().parent
                folder.mkdir(parents=True, exist_ok=True)
                input_file = folder / "input.txt"
                input_file.touch(exist_ok=True)
            names = ", ".join(info.name for info in q.list_queues()) or "none"
            click.echo(f"database {mask_url(db)} ready: schema version {q.schema_version()}, "
                       f"queues: {names}")
    except QueueError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
