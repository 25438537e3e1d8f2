"""Strict JSON request bodies: no NaN/Infinity, no overflowing floats, only valid UTF-8/Unicode.

Python's ``json`` module accepts ``NaN``, ``Infinity`` and ``1e999`` (which becomes ``inf``) and
happily decodes lone surrogates such as ``"\\ud800"``; none of them can be stored or echoed back
faithfully. :class:`StrictJSONRoute` makes every FastAPI route parse its body with
:func:`strict_loads`, so such input is a 422 with a clear message rather than a surprise later.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON (use a finite number)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        shown = text if len(text) <= 24 else text[:24] + "..."
        raise ValueError(f"the number {shown} is out of range")
    return value


def strict_loads(body: bytes) -> Any:
    """Decode a JSON document strictly; every problem is a ``json.JSONDecodeError``."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise json.JSONDecodeError("the body is not valid UTF-8", "", exc.start) from None
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise json.JSONDecodeError("the document is nested too deeply", "", 0) from None
    except ValueError as exc:  # parse hooks, or an integer with too many digits
        raise json.JSONDecodeError(str(exc), "", 0) from None
    if _ESCAPED_SURROGATE.search(text):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise json.JSONDecodeError(
                "a string holds an unpaired surrogate escape (invalid Unicode)", "", 0
            ) from None
        except RecursionError:
            raise json.JSONDecodeError("the document is nested too deeply", "", 0) from None
    return value


class StrictJSONRequest(Request):
    """A request whose ``json()`` is :func:`strict_loads`."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = strict_loads(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """An ``APIRoute`` that parses JSON bodies with :func:`strict_loads`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict_handler
