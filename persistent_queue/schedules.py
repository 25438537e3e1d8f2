"""When a recurring schedule fires: interval and cron ticks, and the missed-tick rule.

Missed ticks (no scheduler ran while they came due) are **coalesced**: when a scheduler comes
back it enqueues one job for the oldest missed tick (its ``scheduled_for`` header says which),
counts the others in ``ScheduleInfo.missed``, and the schedule continues with the first tick
after now. Interval ticks stay on their grid (``start + k * every``); they never drift.

A cron expression may run out of ticks (a year field, ``0 0 1 1 * 0 2030``): after its last
tick the schedule is **finished** (:func:`advance` returns no next tick). One with no tick at
all from its start (``0 0 30 2 *``, a year range in the past) is refused when declared.
croniter looks 50 years ahead at most; a tick further away counts as none.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

from .errors import InvalidArgument
from .models import ScheduleInfo

#: Missed cron ticks counted one by one up to this many; beyond it the count is a lower bound.
_MAX_COUNTED_CRON_TICKS = 10_000


def zone(name: str) -> tzinfo:
    """The time zone a cron expression is read in; ``InvalidArgument`` for an unknown name."""
    if name == "UTC":
        return UTC
    if not isinstance(name, str):
        raise InvalidArgument(f"timezone must be a string, not {type(name).__name__}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: "Europe", a folder
        shown = name if len(name) <= 64 else name[:64] + "..."
        raise InvalidArgument(f"unknown time zone {shown!r} (use an IANA name such as "
                              "'Europe/Paris' or 'UTC')") from exc


def check_cron(expression: str) -> str:
    """A valid five- or six-field cron expression, or ``InvalidArgument``."""
    if not isinstance(expression, str) or not croniter.is_valid(expression.strip()):
        raise InvalidArgument(f"invalid cron expression {expression!r}")
    return expression.strip()


def cron_after(expression: str, timezone: str, after: float) -> float | None:
    """The first tick of ``expression`` strictly after ``after`` (epoch seconds), or None if
    there is none (the expression has run out of ticks, or never had one)."""
    start = datetime.fromtimestamp(after, zone(timezone))
    try:
        return float(croniter(expression, start).get_next(float))
    except CroniterBadDateError:
        return None


def first_tick(*, every: float | None, cron: str | None, timezone: str, now: float,
               start_at: float | None) -> float:
    """The first tick of a new schedule: ``start_at`` if given, else one period from now.

    ``InvalidArgument`` for a cron expression with no tick from then on (``0 0 30 2 *``, or a
    year range in the past): such a schedule would never fire.
    """
    if every is not None:
        return now + every if start_at is None else start_at
    assert cron is not None
    after = now if start_at is None else start_at - 1e-6
    tick = cron_after(cron, timezone, after)
    if tick is None:
        since = datetime.fromtimestamp(max(after, 0.0), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        raise InvalidArgument(f"cron expression {cron!r} has no tick after {since} (an "
                              "impossible date, a year range in the past, or none within 50 years)")
    return tick


def advance(schedule: ScheduleInfo, now: float) -> tuple[float | None, int]:
    """The tick after ``now`` following the due tick, and how many ticks in between were missed.

    The due tick itself is fired (one job); ticks after it and at or before ``now`` are missed.
    The next tick is None when a cron expression has no tick left: the schedule is finished.
    """
    tick = schedule.next_run_at
    if schedule.every is not None:
        passed = math.floor((now - tick) / schedule.every)
        upcoming = tick + (passed + 1) * schedule.every
        return upcoming, max(0, passed)
    assert schedule.cron is not None
    missed = 0
    following = cron_after(schedule.cron, schedule.timezone, tick)
    while following is not None and following <= now and missed < _MAX_COUNTED_CRON_TICKS:
        missed += 1
        following = cron_after(schedule.cron, schedule.timezone, following)
    if following is not None and following <= now:
        following = cron_after(schedule.cron, schedule.timezone, now)
    return following, missed
