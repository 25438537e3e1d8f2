"""The body of ``POST /enqueue`` and ``POST /send``: JSON, or a form as ``curl -d`` sends it.

FastAPI reads one kind of body per route; these two routes take either, so they read it here:

- JSON (``application/json``, ``application/*+json`` or no Content-Type) is decoded strictly
  (:func:`~persistent_queue.api.strict_json.strict_loads`) and validated as an
  :class:`EnqueueRequest`, exactly as before;
- a form (``application/x-www-form-urlencoded``, what ``curl -d 'message=Hello World'`` sends)
  is decoded with :mod:`urllib.parse` (no multipart dependency): ``message`` (or ``payload``)
  becomes the payload, as text; ``queue``, ``priority``, ``delay``, ``run_at``,
  ``max_attempts``, ``dedup_key``, ``dedup_window``, ``timeout`` and ``group_key`` are read from
  their text.
  ``headers`` and ``depends_on`` need JSON.

A request that names no queue gets ``None`` here; the route puts the server's default queue in
its place. Every other problem is an :class:`InvalidBody` whose message ends with what a valid
request looks like.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from .errors import describe_validation
from .schemas import NAME_REGEX, EnqueueRequest
from .strict_json import strict_loads

FORM = "application/x-www-form-urlencoded"
#: Form fields and the request field each one fills.
FORM_FIELDS = {
    "message": "payload", "payload": "payload", "queue": "queue", "priority": "priority",
    "delay": "delay", "run_at": "run_at", "max_attempts": "max_attempts",
    "dedup_key": "dedup_key", "dedup_window": "dedup_window", "timeout": "timeout",
    "group_key": "group_key",
}
#: More fields than a form can meaningfully carry is a mistake, not a request.
MAX_FORM_FIELDS = 2 * len(FORM_FIELDS)

#: The form's OpenAPI schema (values are text; numbers are parsed from it).
FORM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "message": {"type": "string", "description": "the payload, as text"},
        "queue": {"type": "string", "pattern": NAME_REGEX,
                  "description": "default: the server's default queue"},
        "priority": {"type": "integer"},
        "delay": {"type": "number", "minimum": 0},
        "max_attempts": {"type": "integer", "minimum": 1},
        "dedup_key": {"type": "string", "minLength": 1},
        "timeout": {"type": "number", "exclusiveMinimum": 0,
                    "description": "seconds an attempt may run"},
        "group_key": {"type": "string", "minLength": 1},
    },
    "required": ["message"],
    "additionalProperties": False,
}


class InvalidBody(Exception):
    """A body that is no valid enqueue request, with the 4xx to answer it with."""

    def __init__(self, status: int, error: str, detail: str,
                 problems: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.problems = problems or [{"field": "body", "message": detail}]


def usage(default_queue: str) -> str:
    """What a valid enqueue request looks like (ends every :class:`InvalidBody` message)."""
    return (
        'a valid request is JSON such as {"queue": "emails", "payload": {"to": "a@b.c"}} with '
        "'Content-Type: application/json', or a form such as message=Hello+World&queue=emails "
        "(curl -d 'message=Hello World'); without a queue the job goes to "
        f"{default_queue!r}"
    )


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_json(media_type: str) -> bool:
    """Whether a media type (lower case, no parameters) is read as JSON (none counts)."""
    return media_type in ("", "application/json") or (
        media_type.startswith("application/") and media_type.endswith("+json"))


def _invalid(detail: str, default_queue: str, field: str = "body") -> InvalidBody:
    message = f"{detail}; {usage(default_queue)}"
    return InvalidBody(422, "validation_error", message, [{"field": field, "message": detail}])


def _json_fields(body: bytes, default_queue: str) -> Any:
    if not body.strip():
        return {}
    try:
        return strict_loads(body)
    except json.JSONDecodeError as exc:
        raise _invalid(f"invalid JSON body: {exc.msg}", default_queue) from None


def _form_fields(body: bytes, default_queue: str) -> dict[str, str]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid("the form is not valid UTF-8", default_queue) from None
    if text.lstrip().startswith(("{", "[")):
        raise _invalid("the body looks like JSON but is sent as a form (curl -d sends "
                       f"{FORM}): add -H 'Content-Type: application/json'", default_queue)
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text),
                          encoding="utf-8", errors="strict", max_num_fields=MAX_FORM_FIELDS)
    except UnicodeDecodeError:
        raise _invalid("a form value is not valid UTF-8 once decoded", default_queue) from None
    except ValueError as exc:
        raise _invalid(f"not a valid form ({exc}); each field is name=value, joined with &",
                       default_queue) from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        target = FORM_FIELDS.get(name)
        if target is None:
            accepted = ", ".join(name for name in FORM_FIELDS if name != "payload")
            raise _invalid(f"unknown form field {name[:40]!r}: a form takes {accepted} "
                           "(headers and depends_on need JSON)", default_queue, name[:40])
        if target in fields:
            raise _invalid(f"form field {name!r} is given twice"
                           + (" (message and payload are the same field)"
                              if target == "payload" else ""), default_queue, name)
        fields[target] = value
    if "payload" not in fields:
        raise _invalid("a form needs a message field (the payload)", default_queue, "message")
    return fields


def parse_enqueue(content_type: str | None, body: bytes, default_queue: str) -> EnqueueRequest:
    """The enqueue request in ``body``, or :class:`InvalidBody` (415 or 422)."""
    media_type = _media_type(content_type)
    if media_type == FORM:
        data: Any = _form_fields(body, default_queue)
        strict = False  # a form carries text: "5" is the priority 5
    elif is_json(media_type):
        data = _json_fields(body, default_queue)
        strict = True
    else:
        raise InvalidBody(415, "unsupported_media_type",
                          f"Content-Type {media_type!r} is not accepted; "
                          f"{usage(default_queue)}")
    try:
        return EnqueueRequest.model_validate(data, strict=strict)
    except ValidationError as exc:
        summary, problems = describe_validation(RequestValidationError(exc.errors()))
        raise InvalidBody(422, "validation_error", f"{summary}; {usage(default_queue)}",
                          problems) from None
