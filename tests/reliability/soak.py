"""Short mode (``make test``) or long mode (``PQ_SOAK=1``, ``make soak``) figures."""

from __future__ import annotations

import os

#: True when the long (soak) figures of docs/RELIABILITY.md are asked for.
SOAK = os.environ.get("PQ_SOAK", "") not in ("", "0")


def scale(short: int | float, long: int | float) -> int | float:
    """``long`` in soak mode, else ``short``."""
    return long if SOAK else short


def report(name: str, **figures: object) -> None:
    """Print one line of measured figures (visible with ``pytest -s`` or in the soak log)."""
    mode = "long" if SOAK else "short"
    print(f"\n[reliability {name} {mode}] " + " ".join(f"{k}={v}" for k, v in figures.items()))
