"""A cap on request bodies whose refusal is a problem document like every other error.

Starlette's ``RequestBodyLimitMiddleware`` counts the bytes as they arrive,
which also catches chunked bodies with no ``Content-Length``; when it trips
while the route reads the body, the 413 goes through our exception handlers.
But when the declared ``Content-Length`` alone is over the limit it answers
by itself, in ``text/plain``. So this wrapper answers that case first and
leaves the counting to Starlette.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from entrypoints.http.problems import problem


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_body_size: int) -> None:
        self.max_body_size = max_body_size
        self.app = RequestBodyLimitMiddleware(app, max_body_size=max_body_size)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            declared = Headers(scope=scope).get("content-length", "")
            if declared.isdigit() and int(declared) > self.max_body_size:
                response = problem(
                    413,
                    "content_too_large",
                    f"the body is {int(declared)} bytes; at most {self.max_body_size} are accepted",
                    title="Content Too Large",
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
