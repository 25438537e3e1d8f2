"""``pq stats | queues list | create | delete | pause | resume``."""

from __future__ import annotations

import click

from .common import json_option, open_queue, print_json, table


@click.command()
@click.argument("queue", required=False)
@json_option
@click.pass_context
def stats(ctx: click.Context, queue: str | None, as_json: bool) -> None:
    """Jobs per state, for every queue or one, with dedup hits and enqueues refused as full."""
    with open_queue(ctx) as q:
        found = q.stats() if queue is None else {queue: q.stats(queue)}
    rows = [s.to_dict() for s in found.values()]
    if as_json:
        print_json(rows)
        return
    table(rows, ["queue", "waiting", "ready", "scheduled", "leased", "done", "dead", "paused",
                 "dedup_hits", "rejected_full"])


@click.group()
def queues() -> None:
    """Create, delete, pause, resume and list queues."""


@queues.command("list")
@json_option
@click.pass_context
def list_queues(ctx: click.Context, as_json: bool) -> None:
    """Every queue with its settings."""
    with open_queue(ctx) as q:
        found = q.list_queues()
    if as_json:
        print_json([info.to_dict() for info in found])
        return
    table([info.to_dict() for info in found],
          ["name", "max_attempts", "visibility_timeout", "max_size", "paused"])


@queues.command()
@click.argument("name")
@click.option("--max-attempts", type=int, default=None)
@click.option("--visibility-timeout", type=float, default=None)
@click.option("--max-size", type=int, default=None, help="Refuse jobs beyond this many.")
@click.option("--exist-ok", is_flag=True, help="Succeed if it already exists.")
@click.pass_context
def create(ctx: click.Context, name: str, max_attempts: int | None,
           visibility_timeout: float | None, max_size: int | None, exist_ok: bool) -> None:
    """Create queue NAME."""
    with open_queue(ctx) as q:
        info = q.create_queue(name, max_attempts=max_attempts,
                              visibility_timeout=visibility_timeout, max_size=max_size,
                              exist_ok=exist_ok)
    print_json(info.to_dict())


@queues.command()
@click.argument("name")
@click.option("--force", is_flag=True, help="Also delete its unfinished jobs.")
@click.pass_context
def delete(ctx: click.Context, name: str, force: bool) -> None:
    """Delete queue NAME with its done jobs, dead letters and history.

    The schedules that target it and its topic subscriptions are deleted with it (they would
    recreate it). Refused, deleting nothing, while jobs are pending (unless --force).
    """
    with open_queue(ctx) as q:
        deleted = q.delete_queue(name, force=force)
    click.echo(" ".join(filter(None, [f"queue {name!r} deleted", deleted.summary()])))


@queues.command()
@click.argument("name")
@click.pass_context
def pause(ctx: click.Context, name: str) -> None:
    """Stop consumers claiming from NAME (producers may still enqueue)."""
    with open_queue(ctx) as q:
        q.pause(name)
    click.echo(f"queue {name!r} paused")


@queues.command()
@click.argument("name")
@click.pass_context
def resume(ctx: click.Context, name: str) -> None:
    """Let consumers claim from NAME again."""
    with open_queue(ctx) as q:
        q.resume(name)
    click.echo(f"queue {name!r} resumed")


COMMANDS = [stats, queues]
