"""Helpers of every ``pq`` command: opening the queue, errors, JSON and tables.

Exit codes: 0 success, 1 the operation failed (a stale lease, a database error, an unhealthy
database, no such schedule, a topic without subscribers), 2 bad usage or input (including an
invalid dependency, or a SQLite file that does not exist for a command that does not create
one), 3 nothing to do (e.g. ``dequeue`` found no job), 4 the queue is full (``max_size``
reached: retry later).

Only the commands that add something (``init``, ``enqueue``, ``queues create``, ``topics
subscribe``, ``topics publish``, ``schedules add``) and the processes create a missing SQLite
file; every other command says there is no database there, so a mistyped ``--db`` never leaves
an empty database behind.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, NoReturn

import click

from .. import config
from ..durations import parse_duration
from ..errors import InvalidInput, QueueError, QueueFull
from ..queue import Queue
from ..storage.postgres.url import is_postgres_url, mask_url

EXIT_FAILED, EXIT_USAGE, EXIT_EMPTY, EXIT_FULL = 1, 2, 3, 4


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def exit_code(exc: QueueError) -> int:
    """The exit code of a library error (see the module docstring)."""
    if isinstance(exc, InvalidInput):
        return EXIT_USAGE
    return EXIT_FULL if isinstance(exc, QueueFull) else EXIT_FAILED


def missing_database(target: str) -> str | None:
    """The file a SQLite path or ``sqlite:///`` URL names if it does not exist, else None
    (a ``postgresql://`` URL, ``:memory:`` or an existing file)."""
    if is_postgres_url(target):
        return None
    scheme, sep, rest = target.partition("://")
    path = rest if sep and scheme == "sqlite" else target
    if path in ("", ":memory:") or "://" in path or os.path.exists(path):
        return None
    return path


@contextmanager
def open_queue(ctx: click.Context, *, create: bool = False) -> Iterator[Queue]:
    """The queue of ``--db``; library errors become a message and an exit code.

    Without ``create``, a SQLite file that does not exist is not created: "no database at
    PATH" and exit 2.
    """
    path = None if create else missing_database(ctx.obj["db"])
    if path is not None:
        fail(f"no database at {path}; create it with `pq --db {path} init`", EXIT_USAGE)
    try:
        q = Queue(ctx.obj["db"], durability=ctx.obj["durability"])
    except QueueError as exc:
        fail(f"cannot open {mask_url(ctx.obj['db'])}: {exc}", EXIT_USAGE if isinstance(
            exc, InvalidInput) else EXIT_FAILED)
    try:
        yield q
    except QueueFull as exc:
        fail(f"queue full (retry later): {exc}", EXIT_FULL)
    except QueueError as exc:
        fail(str(exc), exit_code(exc))
    finally:
        q.close()


def print_json(data: Any) -> None:
    """Indented JSON on stdout."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def when(stamp: float | None) -> str:
    """An epoch time as ``YYYY-MM-DD HH:MM:SS`` UTC (or ``-``)."""
    if stamp is None:
        return "-"
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    """Left-aligned columns with a header line."""
    cells = [[("-" if row.get(c) is None else str(row.get(c))) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for r in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def parse_json_arg(text: str, *, what: str = "payload") -> Any:
    """JSON if it parses, else the text itself as a string.

    JSON that Python cannot read (nested past the recursion limit, an integer of thousands of
    digits) is bad input: a message naming ``what`` and exit 2, as the library would refuse it.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
    except RecursionError:
        fail(f"{what} is nested deeper than {config.MAX_JSON_DEPTH} levels", EXIT_USAGE)
    except ValueError:  # json reads integers with int(), which refuses over 4,300 digits
        fail(f"{what} holds an integer outside the 64-bit range", EXIT_USAGE)


def parse_headers(pairs: Sequence[str]) -> dict[str, Any]:
    """``--header key=value`` pairs as a dict (values parsed as JSON when they parse)."""
    headers: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"--header must look like key=value, not {pair!r}", EXIT_USAGE)
        headers[key] = parse_json_arg(value, what=f"header {key!r}")
    return headers


def parse_duration_arg(text: str, *, name: str) -> float:
    """Seconds from a duration option (90, 30s, 5m, 1h, 7d); bad input fails with exit 2."""
    try:
        return parse_duration(text, name=name)
    except InvalidInput as exc:
        fail(str(exc), EXIT_USAGE)


def parse_time(text: str, *, name: str) -> float:
    """Epoch seconds from a number or an ISO 8601 time (UTC unless it names a zone)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        fail(f"{name} must be epoch seconds or an ISO 8601 time, not {text!r}", EXIT_USAGE)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def json_option(function: Any) -> Any:
    """``--json``: print JSON instead of a table."""
    return click.option("--json", "as_json", is_flag=True,
                        help="Print JSON instead of a table.")(function)
