"""``pq stats | queues list | create | update | delete | pause | resume``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..durations import parse_duration
from ..errors import InvalidInput
from ..models import Alert
from .common import json_option, open_queue, print_json, table

F = TypeVar("F", bound=Callable[..., Any])
#: What removes a setting in ``pq queues update`` (``--concurrency none``).
NONE = "none"


class _OrNone(click.ParamType[Any, Any]):
    """A setting's value, or ``none`` to remove it (the library checks the value itself)."""

    def __init__(self, kind: type[int] | type[float] | type[str], metavar: str,
                 *, duration: bool = False) -> None:
        self.kind, self.name, self.duration = kind, metavar, duration

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        if isinstance(value, str) and value.strip().lower() == NONE:
            return None
        if self.duration:
            try:
                return parse_duration(str(value), name=param.name if param else "duration")
            except InvalidInput as exc:
                self.fail(f"{exc} (or {NONE})", param, ctx)
        if self.kind is not str:
            try:
                return self.kind(value)
            except (TypeError, ValueError):
                noun = "an integer" if self.kind is int else "a number"
                self.fail(f"{value!r} is not {noun} (or {NONE})", param, ctx)
        return value


LIMIT = _OrNone(int, "N")
RATE = _OrNone(str, "COUNT/PERIOD")
SHARE = _OrNone(float, "RATE")
AGE = _OrNone(float, "DURATION", duration=True)
_LIMIT_OPTIONS = [
    ("--concurrency", LIMIT,
     "At most N jobs of the queue leased at once, across every consumer"),
    ("--rate-limit", RATE,
     "At most COUNT claims per PERIOD across every consumer: 50/s, 100/m, 1000/h, 3/10s "
     "(a burst of COUNT, then evenly spaced)"),
    ("--group-concurrency", LIMIT,
     "At most N jobs of one group (--group-key) at once; a group's jobs start in enqueue "
     "order"),
    ("--group-rate-limit", RATE, "At most COUNT claims per PERIOD of one group"),
    ("--alert-depth", LIMIT, "Alert when N or more jobs are ready"),
    ("--alert-oldest-age", AGE,
     "Alert when the oldest ready job has waited this long (90, 30s, 5m, 1h)"),
    ("--alert-failure-rate", SHARE,
     "Alert when this share (above 0, at most 1) of the attempts ended in the last 15 min "
     "failed"),
    ("--alert-dead-letters", LIMIT, "Alert when N or more jobs are dead-lettered"),
]


def limit_options(*, removable: bool) -> Callable[[F], F]:
    """The flow-control and alert options of ``create`` and ``update``
    (docs/flow-control.md); with ``removable``, ``none`` removes a limit or an alert."""
    extra = f"; {NONE} removes it" if removable else ""

    def decorate(command: F) -> F:
        for name, kind, text in reversed(_LIMIT_OPTIONS):
            command = click.option(name, type=kind, default=None, help=text + extra + ".")(
                command)
        return command
    return decorate


def firing(alerts: list[Alert]) -> dict[str, str]:
    """Each queue's firing alerts as one cell: ``"depth 120>=100, dead_letters 3>=1"``."""
    cells: dict[str, list[str]] = {}
    for alert in alerts:
        if alert.firing:
            cells.setdefault(alert.queue, []).append(
                f"{alert.kind} {alert.value:.4g}>={alert.threshold:.4g}")
    return {name: ", ".join(parts) for name, parts in cells.items()}


@click.command()
@click.argument("queue", required=False)
@json_option
@click.pass_context
def stats(ctx: click.Context, queue: str | None, as_json: bool) -> None:
    """Jobs per state, for every queue or one: expired leases, jobs waiting for a retry
    (retry_pending), the oldest ready job's age, dedup hits, enqueues refused as full, flow
    control and the alerts firing."""
    with open_queue(ctx) as q:
        found = q.stats() if queue is None else {queue: q.stats(queue)}
        alerts = firing(q.alerts(queue))
    rows = [{**s.to_dict(), "alerts": alerts.get(s.queue, "")} for s in found.values()]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        age = row["oldest_ready_age"]
        row["oldest_ready"] = "" if age is None else f"{age:.0f}s"
    table(rows, ["queue", "waiting", "ready", "scheduled", "leased", "expired", "retry_pending",
                 "oldest_ready", "done", "dead", "paused", "dedup_hits", "rejected_full", "held",
                 "throttled", "alerts"])


@click.group()
def queues() -> None:
    """Create, update, delete, pause, resume and list queues."""


@queues.command("list")
@json_option
@click.pass_context
def list_queues(ctx: click.Context, as_json: bool) -> None:
    """Every queue with its settings."""
    with open_queue(ctx) as q:
        found = q.list_queues()
        alerts = firing(q.alerts())
    rows = [{**info.to_dict(), "alerts": alerts.get(info.name, "")} for info in found]
    if as_json:
        print_json(rows)
        return
    table(rows, ["name", "max_attempts", "visibility_timeout", "max_size", "paused",
                 "concurrency", "rate_limit", "group_concurrency", "group_rate_limit", "alerts"])


@queues.command()
@click.argument("name")
@click.option("--max-attempts", type=int, default=None)
@click.option("--visibility-timeout", type=float, default=None)
@click.option("--max-size", type=int, default=None, help="Refuse jobs beyond this many.")
@click.option("--exist-ok", is_flag=True, help="Succeed if it already exists.")
@limit_options(removable=False)
@click.pass_context
def create(ctx: click.Context, /, name: str, max_attempts: int | None,
           visibility_timeout: float | None, max_size: int | None, exist_ok: bool,
           **limits: Any) -> None:
    """Create queue NAME (its limits: docs/flow-control.md; its alerts: docs/operations.md)."""
    with open_queue(ctx, create=True) as q:
        info = q.create_queue(name, max_attempts=max_attempts,
                              visibility_timeout=visibility_timeout, max_size=max_size,
                              exist_ok=exist_ok, **limits)
    print_json(info.to_dict())


@queues.command()
@click.argument("name")
@click.option("--max-attempts", type=int, default=None)
@click.option("--visibility-timeout", type=float, default=None)
@click.option("--max-size", type=LIMIT, default=None,
              help=f"Refuse jobs beyond this many; {NONE} removes the bound.")
@limit_options(removable=True)
@click.pass_context
def update(ctx: click.Context, /, name: str, **given: Any) -> None:
    """Change the settings of queue NAME; settings not given stay as they are.

    A new limit applies from the next claim; a changed rate limit starts afresh. An alert
    fires (pq stats, pq queues list, /metrics) when its value reaches its threshold.
    """
    source = click.core.ParameterSource
    changes = {key: value for key, value in given.items()
               if ctx.get_parameter_source(key) is not source.DEFAULT}
    if not changes:
        raise click.UsageError("nothing to change: give at least one setting")
    with open_queue(ctx) as q:
        info = q.update_queue(name, **changes)
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
