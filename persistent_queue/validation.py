"""Checks every user value before it reaches storage; each failure is a specific QueueError."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from . import config
from .errors import InvalidArgument, InvalidPayload, InvalidQueueName, PayloadTooLarge

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def queue_name(name: object, *, what: str = "queue") -> str:
    """A valid queue or topic name, or ``InvalidQueueName``."""
    if not isinstance(name, str):
        raise InvalidQueueName(f"{what} name must be a string, not {type(name).__name__}")
    if not config.NAME_PATTERN.fullmatch(name):
        shown = name if len(name) <= 40 else name[:40] + "..."
        raise InvalidQueueName(
            f"invalid {what} name {shown!r}: use 1-128 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name


def _check_json_value(value: Any, *, where: str) -> None:
    """Reject what JSON cannot carry faithfully: NaN/Infinity, huge ints, deep nesting."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > config.MAX_JSON_DEPTH:
            raise InvalidPayload(f"{where} is nested deeper than {config.MAX_JSON_DEPTH} levels")
        if isinstance(item, bool) or item is None or isinstance(item, str):
            continue
        if isinstance(item, int):
            if not _INT64_MIN <= item <= _INT64_MAX:
                raise InvalidPayload(f"{where} holds an integer outside the 64-bit range")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise InvalidPayload(f"{where} holds {item!r}, which JSON cannot represent")
        elif isinstance(item, Mapping):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise InvalidPayload(f"{where} has a non-string object key {key!r}")
                stack.append((child, depth + 1))
        elif isinstance(item, list | tuple):
            stack.extend((child, depth + 1) for child in item)
        else:
            raise InvalidPayload(f"{where}: a value of type {type(item).__name__!r} is not JSON")


#: One encoder built once: ``json.dumps`` with non-default options builds a new one per call.
_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode


def _to_json(value: Any, where: str) -> str:
    """JSON text of ``value`` (checked, not yet checked for lone surrogates)."""
    if type(value) is not str:  # a string cannot hold anything the walk would refuse
        _check_json_value(value, where=where)
    try:
        return _encode(value)
    except (TypeError, ValueError) as exc:
        raise InvalidPayload(f"{where} is not JSON: {exc}") from exc


def _utf8_size(text: str, where: str) -> int:
    """Bytes of ``text`` in UTF-8; ``InvalidPayload`` if it holds a lone surrogate."""
    if text.isascii():
        return len(text)
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidPayload(f"{where} holds a string that is not valid Unicode") from exc


def encode_json(value: Any, *, where: str = "payload") -> str:
    """Validated, compact JSON text of ``value``."""
    text = _to_json(value, where)
    _utf8_size(text, where)
    return text


def payload(value: Any, *, max_bytes: int) -> str:
    """The encoded payload, or ``InvalidPayload`` / ``PayloadTooLarge``."""
    text = _to_json(value, "payload")
    size = _utf8_size(text, "payload")
    if size > max_bytes:
        raise PayloadTooLarge(f"payload is {size} bytes encoded; the limit is {max_bytes}")
    return text


def payloads(values: Sequence[Any], *, max_bytes: int) -> list[str]:
    """:func:`payload` of every value (a batch), with the common string case inlined."""
    texts: list[str] = []
    append, encode_string = texts.append, _encode
    for value in values:
        if type(value) is str:
            text = encode_string(value)
            if text.isascii() and len(text) <= max_bytes:
                append(text)
                continue
        append(payload(value, max_bytes=max_bytes))
    return texts


def headers(value: Mapping[str, Any] | None) -> tuple[dict[str, Any], str | None]:
    """Validated headers and their JSON (None when empty)."""
    if value is None:
        return {}, None
    if not isinstance(value, Mapping):
        raise InvalidPayload("headers must be a JSON object of string keys")
    if len(value) > config.MAX_HEADERS:
        raise InvalidPayload(f"at most {config.MAX_HEADERS} headers are allowed")
    clean: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not config.HEADER_KEY_PATTERN.fullmatch(key):
            raise InvalidPayload(
                f"invalid header key {key!r}: use 1-64 letters, digits, '_', '.' or '-'"
            )
        if item is not None and not isinstance(item, str | int | float | bool):
            raise InvalidPayload(f"header {key!r} must be a string, number, boolean or null")
        if isinstance(item, str) and len(item) > config.MAX_HEADER_VALUE_CHARS:
            raise InvalidPayload(
                f"header {key!r} is longer than {config.MAX_HEADER_VALUE_CHARS} characters"
            )
        clean[key] = item
    if not clean:
        return {}, None
    return clean, encode_json(clean, where="headers")


def _shown(value: int | float) -> str:
    """A number as an error message shows it: an integer too long to print by its size."""
    if isinstance(value, int) and value.bit_length() > 256:  # over 77 digits
        return f"an integer of {value.bit_length()} bits"
    return str(value)


def integer(value: object, *, name: str, minimum: int, maximum: int) -> int:
    """An int within bounds (bools and floats are refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{name} must be an integer, not {type(value).__name__}")
    if not minimum <= value <= maximum:
        raise InvalidArgument(f"{name} must be between {minimum} and {maximum}, "
                              f"not {_shown(value)}")
    return value


def seconds(
    value: object, *, name: str, maximum: float, allow_zero: bool = True
) -> float:
    """A finite, non-negative number of seconds (a ``timedelta`` is accepted)."""
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgument(f"{name} must be a number of seconds, not {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:  # an int beyond any float
        raise InvalidArgument(f"{name} is too large: at most {maximum:g} seconds, not "
                              f"{_shown(value)}") from None
    if not math.isfinite(number):
        raise InvalidArgument(f"{name} must be finite, not {value}")
    if number < 0 or (number == 0 and not allow_zero):
        bound = "non-negative" if allow_zero else "positive"
        raise InvalidArgument(f"{name} must be {bound}, not {value}")
    if number > maximum:
        raise InvalidArgument(f"{name} must be at most {maximum:g} seconds, not {value}")
    return number


def run_timeout(value: object, *, name: str = "timeout") -> float | None:
    """An optional run-time limit: None, or positive seconds up to ``config.MAX_TIMEOUT``."""
    if value is None:
        return None
    return seconds(value, name=name, maximum=config.MAX_TIMEOUT, allow_zero=False)


def worker_id(value: object) -> str:
    """A worker id to record as a claim's ``claimed_by``: printable text of 1 to
    ``config.MAX_WORKER_ID_CHARS`` characters."""
    if type(value) is not str:
        raise InvalidArgument(f"worker must be a string, not {type(value).__name__}")
    if not 0 < len(value) <= config.MAX_WORKER_ID_CHARS or not value.isprintable():
        raise InvalidArgument(f"worker must be 1-{config.MAX_WORKER_ID_CHARS} printable "
                              f"characters, not {value[:40]!r}")
    return value


def fraction(value: object, *, name: str = "fraction") -> float:
    """A finite number from 0 to 1 (a progress)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgument(f"{name} must be a number from 0 to 1, not "
                              f"{type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:  # an int beyond any float
        raise InvalidArgument(f"{name} is too large: it must be from 0 to 1, not "
                              f"{_shown(value)}") from None
    if not 0.0 <= number <= 1.0:  # NaN fails too
        raise InvalidArgument(f"{name} must be from 0 to 1, not {value}")
    return number


def text(value: object, *, name: str, max_chars: int) -> str | None:
    """An optional free-text value (an error message, a reason), truncated to ``max_chars``."""
    if value is None:
        return None
    if not isinstance(value, str):
        try:
            value = str(value)
        except Exception as exc:  # a __str__ that raises, an int too long to print
            raise InvalidArgument(f"{name} cannot be shown as text: {type(exc).__name__}"
                                  ) from None
    value = value.encode("utf-8", "replace").decode("utf-8")  # no lone surrogates
    value = value.replace("\x00", "\\0")
    return value if len(value) <= max_chars else value[: max_chars - 3] + "..."
