"""``pq backup`` and ``pq restore``: an online copy of a SQLite database, and putting one back.

On PostgreSQL ``pq backup`` prints the ``pg_dump`` command that backs the database up (the
password masked) and exits 2; with ``--pg-dump`` it runs it. Exit codes: 0 done, 1 the copy
failed or the database is in use, 2 refused input (a missing source, an existing DEST without
``--force``, a missing folder, a file that is not a persistent-queue database).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .. import backup as backups
from ..errors import QueueError
from ..storage.postgres.url import is_postgres_url, mask_url
from .common import EXIT_USAGE, exit_code, fail


class _Progress:
    """Progress of a copy on stderr: one updating line on a terminal, else a line per 10 %."""

    def __init__(self, then: str = "") -> None:
        self.tty = sys.stderr.isatty()
        self.shown = -1
        self.then = then  # said with 100 %: what runs after the copy

    def __call__(self, written: int, total: int) -> None:
        percent = 100 if total <= 0 else min(100, written * 100 // total)
        step = percent if self.tty else percent // 10 * 10
        if step <= self.shown:
            return
        self.shown = step
        line = f"copied {percent:3d}% of {_size(total)}"
        if percent == 100 and self.then:
            line += f"; {self.then}"
        if self.tty:
            click.echo(f"\r{line}", err=True, nl=percent == 100)
        else:
            click.echo(line, err=True)


def _size(count: int) -> str:
    """Bytes as ``B``, ``KiB``, ``MiB`` or ``GiB``."""
    if count < 1024:
        return f"{count} B"
    value = count / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


@click.command("backup")
@click.argument("dest", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite DEST if it exists.")
@click.option("--no-verify", is_flag=True, help="Skip PRAGMA integrity_check on the copy.")
@click.option("--quiet", "-q", is_flag=True, help="No progress, only the result line.")
@click.option("--pg-dump", "run_pg_dump", is_flag=True,
              help="PostgreSQL: run pg_dump (on PATH) into DEST instead of printing the command.")
@click.pass_context
def backup_command(ctx: click.Context, dest: Path, force: bool, no_verify: bool, quiet: bool,
                   run_pg_dump: bool) -> None:
    """Copy the live database to the file DEST while producers and consumers run.

    The copy is one consistent snapshot, written to a temporary file beside DEST and renamed
    when complete and checked. On PostgreSQL: prints the pg_dump command (exit 2), or runs it
    with --pg-dump.
    """
    db = ctx.obj["db"]
    try:
        if is_postgres_url(db):
            if not run_pg_dump:
                shown = backups.pg_dump_command(db, str(dest))[0]
                click.echo("A PostgreSQL database is backed up with pg_dump (restore with "
                           "pg_restore --clean --dbname URL FILE):", err=True)
                click.echo(shown)
                click.echo("Pass --pg-dump to run it (PGPASSWORD carries the password).",
                           err=True)
                sys.exit(EXIT_USAGE)
            backups.pg_dump(db, dest, force=force)
            click.echo(f"backup {dest}: pg_dump of {mask_url(db)}, "
                       f"{_size(dest.stat().st_size)}")
            return
        result = backups.backup(db, dest, force=force, verify=not no_verify,
                                progress=None if quiet else _Progress(
                                    "" if no_verify else "checking it (integrity_check)"))
    except QueueError as exc:
        fail(str(exc), exit_code(exc))
    click.echo(f"backup {result.path}: {result.jobs} jobs, {result.dead_letters} dead letters, "
               f"{_size(result.bytes)}, schema version {result.schema_version}, "
               f"{'integrity ok' if result.verified else 'not verified'}, "
               f"{result.seconds:.1f} s")


@click.command("restore")
@click.argument("src", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True,
              help="Delete the replaced database instead of keeping it as "
                   "<db>.before-restore-<time>.")
@click.option("--quiet", "-q", is_flag=True, help="No progress, only the result line.")
@click.pass_context
def restore_command(ctx: click.Context, src: Path, force: bool, quiet: bool) -> None:
    """Replace the database (--db) with the backup SRC, then migrate it.

    Refused while any process has the database open or a worker's heartbeat is recent: stop
    producers, consumers, the API and the consoles first. SRC must pass its integrity check.
    """
    try:
        result = backups.restore(src, ctx.obj["db"], keep_old=not force,
                                 progress=None if quiet else _Progress("putting it in place"))
    except QueueError as exc:
        fail(str(exc), exit_code(exc))
    migrated = (f", migrated from schema version {result.restored_version}"
                if result.restored_version != result.schema_version else "")
    click.echo(f"restored {src} onto {result.path}: {result.jobs} jobs, "
               f"{result.dead_letters} dead letters, schema version "
               f"{result.schema_version}{migrated}")
    if result.kept is not None:
        click.echo(f"the replaced database is kept as {result.kept}")


COMMANDS = [backup_command, restore_command]
