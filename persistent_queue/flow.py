"""Flow control's values and arithmetic: limits, rate limits (GCRA) and group keys.

A queue may limit its claims, across every consumer of the database (``docs/flow-control.md``):
``concurrency`` (leased jobs at once), ``rate_limit`` (claims per period), and per group of
jobs sharing a ``group_key``: ``group_concurrency`` and ``group_rate_limit``. This module
checks those settings and does the rate arithmetic; the storage core applies them inside the
claim's transaction (:mod:`persistent_queue.storage.flow`).

Rate limits use the generic cell rate algorithm (GCRA): one number per queue (or group), the
theoretical arrival time ``tat``, instead of a log of claim times. A rate of ``count`` per
``period`` spaces claims ``interval = period / count`` apart and tolerates a burst of ``count``:
``"50/s"`` lets 50 claims go at once after a quiet second, then one every 20 ms. Over any
window of ``w`` seconds at most ``count + w * count / period`` claims go (``"10/s"`` over 5 s:
at most 60, 50 plus the burst of 10).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal

from .errors import InvalidArgument

#: The largest concurrency, group concurrency and rate count accepted.
MAX_LIMIT = 1_000_000
#: The longest rate period accepted (seconds): one day.
MAX_PERIOD = 86_400.0
#: Most characters of a group key.
MAX_GROUP_KEY_CHARS = 256
#: Slack in the rate arithmetic (seconds), so that float rounding never holds back a claim
#: that is exactly due: epoch seconds near 1.7e9 are exact to about 0.24 microseconds, so
#: the rate lets a claim through at most a microsecond early.
_EPSILON = 1e-6

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_RATE = re.compile(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)?\s*([smh])\s*")


@dataclass(frozen=True, slots=True)
class Rate:
    """At most ``count`` claims per ``period`` seconds, in a burst of up to ``count``."""

    count: int
    period: float

    @property
    def interval(self) -> float:
        """Seconds between claims at the steady rate."""
        return self.period / self.count

    @property
    def tolerance(self) -> float:
        """How far ahead of ``now`` the theoretical arrival time may run (the burst)."""
        return self.period - self.interval

    def __str__(self) -> str:
        """The canonical text: ``"50/s"``, ``"100/m"``, ``"3/10s"``."""
        for unit, seconds in (("h", 3600.0), ("m", 60.0), ("s", 1.0)):
            if self.period % seconds == 0:
                multiple = self.period / seconds
                return f"{self.count}/{'' if multiple == 1 else f'{multiple:g}'}{unit}"
        return f"{self.count}/{_decimal(self.period)}s"

    @classmethod
    def parse(cls, value: object, *, name: str = "rate_limit") -> Rate:
        """``"50/s"``, ``"100/m"``, ``"1000/h"`` or ``"3/10s"``; ``InvalidArgument`` else."""
        match = _RATE.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            shown = repr(value) if isinstance(value, str) else type(value).__name__
            raise InvalidArgument(
                f'{name} must be a count per period such as "50/s", "100/m", "1000/h" or '
                f'"3/10s", not {shown}')
        digits, multiple, unit = match.group(1).lstrip("0") or "0", match.group(2), match.group(3)
        if len(digits) > len(str(MAX_LIMIT)):  # before int(): Python refuses 4,301 digits
            raise InvalidArgument(f"{name}: the count must be between 1 and {MAX_LIMIT}, "
                                  f"not a number of {len(digits)} digits")
        count = int(digits)
        period = (float(multiple) if multiple else 1.0) * _UNITS[unit]
        if not 1 <= count <= MAX_LIMIT:
            raise InvalidArgument(f"{name}: the count must be between 1 and {MAX_LIMIT}, "
                                  f"not {count}")
        if not 0 < period <= MAX_PERIOD:
            raise InvalidArgument(f"{name}: the period must be more than 0 and at most "
                                  f"{MAX_PERIOD:g} seconds (a day), not {period:g}")
        return cls(count, period)


def _decimal(seconds: float) -> str:
    """A period in positional notation, every digit kept (``1e-07`` is ``0.0000001``): the
    text parses back to the same float."""
    return format(Decimal(repr(seconds)), "f")


def rate(value: object, *, name: str) -> Rate | None:
    """A rate limit given as text (None for none)."""
    if value is None:
        return None
    if isinstance(value, Rate):
        return Rate.parse(str(value), name=name)
    return Rate.parse(value, name=name)


def limit(value: object, *, name: str) -> int | None:
    """A concurrency limit: an integer of at least 1 (None for none)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{name} must be an integer, not {type(value).__name__}")
    if not 1 <= value <= MAX_LIMIT:
        raise InvalidArgument(f"{name} must be between 1 and {MAX_LIMIT}, not {value}")
    return value


def group_key(value: object) -> str | None:
    """A job's group key: printable text of 1-256 characters (None for none)."""
    if value is None:
        return None
    if (not isinstance(value, str) or not value or len(value) > MAX_GROUP_KEY_CHARS
            or not value.isprintable()):
        raise InvalidArgument(
            f"group_key must be printable text of 1-{MAX_GROUP_KEY_CHARS} characters")
    return value


# -- GCRA -------------------------------------------------------------------------------------

def allowance(tat: float | None, now: float, limit: Rate) -> int:
    """How many claims the rate lets go at ``now`` (0 to ``limit.count``)."""
    ahead = 0.0 if tat is None or tat <= now else tat - now
    room = limit.tolerance - ahead
    if room < -_EPSILON:
        return 0
    return min(limit.count, math.floor((room + _EPSILON) / limit.interval) + 1)


def advance(tat: float | None, now: float, limit: Rate, claims: int) -> float:
    """The theoretical arrival time after ``claims`` more claims at ``now``."""
    start = now if tat is None or tat < now else tat
    return start + claims * limit.interval


def next_allowed(tat: float | None, now: float, limit: Rate) -> float:
    """When the rate next lets a claim go (``now`` if it does now)."""
    start = now if tat is None or tat < now else tat
    return max(now, start - limit.tolerance)
