"""Human durations for command lines: ``90``, ``30s``, ``15m``, ``12h``, ``7d``."""

from __future__ import annotations

import math
import re

from .errors import InvalidArgument

_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*")
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str, *, name: str = "duration") -> float:
    """Seconds in ``text``; ``InvalidArgument`` naming ``name`` if it is not a duration."""
    match = _DURATION.fullmatch(text)
    if not match:
        raise InvalidArgument(f"{name} must be seconds or a number with s, m, h or d "
                              f"(e.g. 30s, 15m, 7d), not {text!r}")
    value = float(match.group(1)) * _UNITS[match.group(2)]
    if not math.isfinite(value):
        raise InvalidArgument(f"{name} is too large: {text!r}")
    return value
