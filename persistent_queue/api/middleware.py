"""Plain ASGI middleware: the request body limit (413) and bearer-token authentication (401/403).

Both are pure ASGI (not ``BaseHTTPMiddleware``) so streaming, long polls and disconnect
detection keep working.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Routes that are reads even with a read-only token: every GET/HEAD except these, which claim.
CLAIMING_GET_PATHS = frozenset({"/dequeue", "/receive"})
#: Routes open without a token (load balancers and supervisors probe them).
PUBLIC_PATHS = frozenset({"/healthz"})


async def send_error(send: Send, status: int, error: str, detail: str,
                     headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    """Send a complete JSON error response ``{"error": ..., "detail": ...}``."""
    body = json.dumps({"error": error, "detail": detail}).encode("utf-8")
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()), *headers],
    })
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """Refuse bodies larger than ``max_bytes`` with 413, by header and by actual size.

    The body is read up front (it is small by construction) and replayed to the app.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = f"the request body is larger than {self.max_bytes} bytes"
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await send_error(send, 400, "bad_request", "invalid Content-Length header")
                    return
                if declared > self.max_bytes:
                    await send_error(send, 413, "body_too_large", too_large)
                    return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await send_error(send, 413, "body_too_large", too_large)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class BearerAuthMiddleware:
    """``Authorization: Bearer <token>`` on every route but ``/healthz``.

    ``token`` grants everything; ``read_token`` (optional) grants reads only: GET and HEAD
    routes other than the claiming ``/dequeue`` and ``/receive`` (403 otherwise). Tokens are
    compared in constant time.
    """

    def __init__(self, app: ASGIApp, *, token: str, read_token: str | None = None) -> None:
        self.app = app
        self.token = token.encode("utf-8")
        self.read_token = read_token.encode("utf-8") if read_token else None

    def _presented(self, scope: Scope) -> bytes | None:
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                scheme, _, credentials = value.partition(b" ")
                if scheme.lower() == b"bearer" and credentials.strip():
                    return bytes(credentials.strip())
                return None
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        presented = self._presented(scope)
        full = presented is not None and hmac.compare_digest(presented, self.token)
        read = (not full and presented is not None and self.read_token is not None
                and hmac.compare_digest(presented, self.read_token))
        if not (full or read):
            await send_error(send, 401, "unauthorized",
                             "a valid 'Authorization: Bearer <token>' header is required",
                             [(b"www-authenticate", b"Bearer")])
            return
        if read and (scope["method"] not in ("GET", "HEAD")
                     or scope["path"] in CLAIMING_GET_PATHS):
            await send_error(send, 403, "forbidden",
                             "this token may only read; claiming and changes need the full token")
            return
        await self.app(scope, receive, send)
