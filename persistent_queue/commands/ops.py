"""``pq cleanup | workers [prune] | busy | doctor``: operating the database."""

from __future__ import annotations

import click

from .. import config
from ..health import database_health
from .common import EXIT_FAILED, json_option, open_queue, parse_duration_arg, print_json, table
from .common import when as fmt_time


@click.command()
@click.option("--older-than", default="7d", show_default=True,
              help="Delete done jobs finished longer ago than this.")
@click.option("--queue", default=None, help="Only this queue.")
@click.option("--vacuum", is_flag=True, help="Return freed pages to the file system.")
@click.pass_context
def cleanup(ctx: click.Context, older_than: str, queue: str | None, vacuum: bool) -> None:
    """Delete old done jobs (what the janitor runs on a schedule)."""
    age = parse_duration_arg(older_than, name="--older-than")
    with open_queue(ctx) as q:
        removed = q.cleanup(age, queue=queue, vacuum=vacuum)
    click.echo(f"removed {removed} done job(s)")


@click.group(invoke_without_command=True)
@click.option("--lost-after", default=f"{config.WORKER_STALE_AFTER:g}s", show_default=True,
              help="A running worker silent this long is shown as lost.")
@json_option
@click.pass_context
def workers(ctx: click.Context, lost_after: str, as_json: bool) -> None:
    """Registered producers and consumers: running, stopped, or lost (silent, no goodbye)."""
    if ctx.invoked_subcommand is not None:
        return
    stale = parse_duration_arg(lost_after, name="--lost-after")
    with open_queue(ctx) as q:
        found = q.workers(stale_after=stale)
    if as_json:
        print_json([w.to_dict() for w in found])
        return
    rows = [{**w.to_dict(), "queues": ",".join(w.queues), "heartbeat": fmt_time(w.heartbeat_at),
             "started": fmt_time(w.started_at)} for w in found]
    table(rows, ["id", "kind", "state", "pid", "queues", "started", "heartbeat", "processed",
                 "failed"])


@workers.command("prune")
@click.option("--older-than", default="7d", show_default=True,
              help="Forget stopped and lost workers last heard of longer ago than this.")
@click.option("--lost-after", default=f"{config.WORKER_STALE_AFTER:g}s", show_default=True,
              help="A running worker silent this long is lost.")
@click.pass_context
def prune_workers(ctx: click.Context, older_than: str, lost_after: str) -> None:
    """Remove stopped and lost workers from the registry (the janitor does it too)."""
    age = parse_duration_arg(older_than, name="--older-than")
    stale = parse_duration_arg(lost_after, name="--lost-after")
    with open_queue(ctx) as q:
        removed = q.prune_workers(age, stale_after=stale)
    click.echo(f"removed {removed} worker(s)")


@click.command()
@click.option("--queue", default=None, help="Only this queue.")
@click.option("--limit", type=int, default=100, show_default=True)
@json_option
@click.pass_context
def busy(ctx: click.Context, queue: str | None, limit: int, as_json: bool) -> None:
    """Jobs running now, longest running first: worker, attempt, progress, lease end."""
    with open_queue(ctx) as q:
        found = q.running_jobs(queue, limit=limit)
    if as_json:
        print_json([job.to_dict() for job in found])
        return
    rows = [{**job.to_dict(), "running": "" if job.running_for is None
             else f"{job.running_for:.0f}s",
             "progress": "" if job.progress is None else f"{job.progress:.0%}",
             "message": job.progress_message or "",
             "lease_until": fmt_time(job.lease_expires_at)} for job in found]
    table(rows, ["id", "queue", "task", "worker", "attempt", "running", "progress", "message",
                 "lease_until"])


@click.command()
@click.option("--quick", is_flag=True, help="PRAGMA quick_check instead of integrity_check "
              "(SQLite; PostgreSQL always runs its consistency query).")
@click.option("--min-free-mb", type=int, default=100, show_default=True,
              help="Less free disk than this is a problem.")
@json_option
@click.pass_context
def doctor(ctx: click.Context, quick: bool, min_free_mb: int, as_json: bool) -> None:
    """Integrity check, WAL size and free disk; on PostgreSQL the server's version, database
    size and connections (exit 1 if anything is wrong)."""
    with open_queue(ctx) as q:
        report = database_health(q, integrity="quick" if quick else "full",
                                 min_free_bytes=min_free_mb * 1024 * 1024)
    if as_json:
        print_json(report.to_dict())
    else:
        mib = 1024 * 1024
        integrity = (report.integrity or "-").splitlines()
        click.echo(f"database        {report.path}")
        if report.server:
            click.echo(f"schema version  {report.schema_version} "
                       f"(PostgreSQL {report.server_version})")
            click.echo(f"integrity       {', '.join(integrity[:5])}")
            click.echo(f"database size   {report.file_bytes / mib:.1f} MiB")
            click.echo(f"connections     {report.connections} of {report.max_connections}")
            click.echo(f"synchronous     {report.synchronous}")
        else:
            click.echo(f"schema version  {report.schema_version} (SQLite {report.sqlite_version})")
            click.echo(f"integrity       {', '.join(integrity[:5])}")
            click.echo(f"journal mode    {report.journal_mode}")
            click.echo(f"database size   {report.file_bytes / mib:.1f} MiB "
                       f"({report.freelist_count} free pages)")
            click.echo(f"WAL size        {report.wal_bytes / mib:.1f} MiB")
            click.echo(f"free disk       {report.free_disk_bytes / mib:.0f} MiB")
        for warning in report.warnings:
            click.echo(f"warning         {warning}")
        click.echo("status          " + ("ok" if report.ok else "; ".join(report.problems)))
    if not report.ok:
        ctx.exit(EXIT_FAILED)


COMMANDS = [cleanup, workers, busy, doctor]
