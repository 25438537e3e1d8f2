"""``POST /enqueue`` and ``POST /send`` answered before the router: the API's hottest route.

The router's machinery (the route table, dependency solving, the request wrapper, the
exception middleware) costs more CPU per request than the enqueue itself. These two routes
read their body themselves and answer every error themselves
(:func:`~persistent_queue.api.routes.messages.enqueue_response`), so this middleware, placed
inside the body limit and authentication, calls that function directly; the routes stay for
the OpenAPI schema and answer the same. Every other request goes on unchanged.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .factory import ApiState
from .routes.messages import enqueue_response

#: The paths this middleware answers (``POST`` only).
ENQUEUE_PATHS = frozenset({"/enqueue", "/send"})


class FastEnqueueMiddleware:
    """Answer ``POST /enqueue`` and ``POST /send`` without the router (same responses)."""

    def __init__(self, app: ASGIApp, *, state: ApiState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["method"] != "POST"
                or scope["path"] not in ENQUEUE_PATHS):
            await self.app(scope, receive, send)
            return
        content_type = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.decode("latin-1")
                break
        chunks: list[bytes] = []
        more = True
        while more:
            message: Message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        response = await enqueue_response(self.state, content_type, b"".join(chunks),
                                          scope["method"], scope["path"])
        await response(scope, receive, send)
