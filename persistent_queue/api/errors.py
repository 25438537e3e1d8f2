"""How failures become HTTP responses: every error is ``{"error": code, "detail": message}``.

Library errors map to specific statuses (see :data:`STATUS_BY_ERROR`); validation problems are
422 with a readable message naming the field; nothing a client sends should produce a 500.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import (
    DatabaseBusy,
    DatabaseMissing,
    InvalidDependency,
    InvalidInput,
    InvalidJobState,
    JobNotFound,
    LeaseLost,
    NoSubscribers,
    PayloadTooLarge,
    QueueAlreadyExists,
    QueueError,
    QueueFull,
    QueueNotEmpty,
    QueueNotFound,
    ScheduleNotFound,
    StorageError,
    StorageFull,
    TaskFailed,
    UnknownTask,
)

logger = logging.getLogger(__name__)

#: Most specific first: the first class the error is an instance of decides.
STATUS_BY_ERROR: list[tuple[type[QueueError], int, str]] = [
    (PayloadTooLarge, 413, "payload_too_large"),
    (InvalidDependency, 422, "invalid_dependency"),
    (InvalidInput, 422, "invalid_input"),
    (UnknownTask, 422, "unknown_task"),
    (TaskFailed, 409, "task_failed"),
    (JobNotFound, 404, "job_not_found"),
    (QueueNotFound, 404, "queue_not_found"),
    (ScheduleNotFound, 404, "schedule_not_found"),
    (NoSubscribers, 404, "no_subscribers"),
    (LeaseLost, 409, "lease_lost"),
    (QueueAlreadyExists, 409, "queue_already_exists"),
    (QueueNotEmpty, 409, "queue_not_empty"),
    (InvalidJobState, 409, "invalid_job_state"),
    (QueueFull, 429, "queue_full"),
    (StorageFull, 507, "storage_full"),
    (DatabaseBusy, 503, "database_busy"),
    (DatabaseMissing, 503, "database_missing"),
    (StorageError, 503, "storage_error"),
]

_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 413: "body_too_large", 415: "unsupported_media_type"}


def _clean(text: str) -> str:
    """Text that always encodes as UTF-8 (no lone surrogates), at most 2,000 characters."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= 2000 else text[:1997] + "..."


def error_response(status: int, error: str, detail: str, **extra: Any) -> JSONResponse:
    """A JSON error response."""
    detail = _clean(detail)
    headers = {"Retry-After": "1"} if status in (429, 503) else None
    return JSONResponse({"error": error, "detail": detail, **extra}, status_code=status,
                        headers=headers)


def queue_error_response(exc: QueueError, method: str, path: str) -> JSONResponse:
    """The response to a library error (:data:`STATUS_BY_ERROR`; 5xx ones are logged)."""
    for cls, status, code in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            if status >= 500:
                logger.warning("storage problem on %s %s: %s", method, path, exc,
                               extra={"error": code})
            return error_response(status, code, str(exc))
    return error_response(400, "queue_error", str(exc))


def _location(loc: Any) -> str:
    parts = [str(part) for part in loc if part not in ("body",)] if loc else []
    return ".".join(parts) or "body"


def describe_validation(exc: RequestValidationError) -> tuple[str, list[dict[str, str]]]:
    """A one-line message and a list of ``{field, message}`` for a validation error."""
    problems = []
    for item in exc.errors():
        message = str(item.get("msg", "invalid value"))
        if item.get("type") == "json_invalid":
            reason = (item.get("ctx") or {}).get("error", "")
            message = f"invalid JSON body: {reason}" if reason else "invalid JSON body"
            problems.append({"field": "body", "message": _clean(message)})
            continue
        problems.append({"field": _clean(_location(item.get("loc"))), "message": _clean(message)})
    summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:5])
    return summary or "invalid request", problems


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(QueueError)
    async def queue_error(request: Request, exc: QueueError) -> JSONResponse:
        return queue_error_response(exc, request.method, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        summary, problems = describe_validation(exc)
        return error_response(422, "validation_error", summary, problems=problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        response = error_response(exc.status_code, code, str(exc.detail))
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "an unexpected error occurred; see the log")
