"""When a recurring schedule fires: interval and cron ticks, and the missed-tick rule.

Missed ticks (no scheduler ran while they came due) are **coalesced**: when a scheduler comes
back it enqueues one job for the oldest missed tick (its ``scheduled_for`` header says which),
counts the others in ``ScheduleInfo.missed``, and the schedule continues with the first tick
after now. Interval ticks stay on their grid (``start + k * every``); they never drift.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from .errors import InvalidArgument
from .models import ScheduleInfo

#: Missed cron ticks counted one by one up to this many; beyond it the count is a lower bound.
_MAX_COUNTED_CRON_TICKS = 10_000


def zone(name: str) -> tzinfo:
    """The time zone a cron expression is read in; ``InvalidArgument`` for an unknown name."""
    if name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidArgument(f"unknown time zone {name!r}") from exc


def check_cron(expression: str) -> str:
    """A valid five- or six-field cron expression, or ``InvalidArgument``."""
    if not isinstance(expression, str) or not croniter.is_valid(expression.strip()):
        raise InvalidArgument(f"invalid cron expression {expression!r}")
    return expression.strip()


def cron_after(expression: str, timezone: str, after: float) -> float:
    """The first tick of ``expression`` strictly after ``after`` (epoch seconds)."""
    start = datetime.fromtimestamp(after, zone(timezone))
    return float(croniter(expression, start).get_next(float))


def first_tick(*, every: float | None, cron: str | None, timezone: str, now: float,
               start_at: float | None) -> float:
    """The first tick of a new schedule: ``start_at`` if given, else one period from now."""
    if every is not None:
        return now + every if start_at is None else start_at
    assert cron is not None
    return cron_after(cron, timezone, now if start_at is None else start_at - 1e-6)


def advance(schedule: ScheduleInfo, now: float) -> tuple[float, int]:
    """The tick after ``now`` following the due tick, and how many ticks in between were missed.

    The due tick itself is fired (one job); ticks after it and at or before ``now`` are missed.
    """
    tick = schedule.next_run_at
    if schedule.every is not None:
        passed = math.floor((now - tick) / schedule.every)
        upcoming = tick + (passed + 1) * schedule.every
        return upcoming, max(0, passed)
    assert schedule.cron is not None
    missed = 0
    upcoming = cron_after(schedule.cron, schedule.timezone, tick)
    while upcoming <= now and missed < _MAX_COUNTED_CRON_TICKS:
        missed += 1
        upcoming = cron_after(schedule.cron, schedule.timezone, upcoming)
    if upcoming <= now:
        upcoming = cron_after(schedule.cron, schedule.timezone, now)
    return upcoming, missed
