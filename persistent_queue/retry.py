"""When a failed job is tried again: exponential backoff with jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .config import DEFAULT_BACKOFF_BASE, DEFAULT_BACKOFF_CAP


@dataclass(frozen=True)
class RetryPolicy:
    """``delay(n) = min(cap, base * 2 ** (n - 1))`` scaled by a random 50-100 %.

    The jitter spreads retries of jobs that failed together (a downstream outage) so they do
    not all come back in the same instant; the floor of 50 % keeps the backoff growing.
    """

    base: float = DEFAULT_BACKOFF_BASE
    cap: float = DEFAULT_BACKOFF_CAP
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt (1-based)."""
        exponent = max(0, attempts - 1)
        ceiling = self.cap if exponent >= 64 else min(self.cap, self.base * 2.0**exponent)
        return ceiling * (0.5 + 0.5 * self.rng.random())
