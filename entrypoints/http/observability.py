"""HTTP metrics and span names by route template, and the ``GET /metrics`` endpoint.

:class:`RequestMetricsMiddleware` sits inside the request log, where routing
has already run by the time the response is sent: it reads the matched
route's template from the ASGI scope, so the histogram's ``route`` label (and
the server span's name) is ``/accounts/{account_id}``, never a path with an
id in it. A request no route matched — a 404 on an unknown path — is labelled
``unmatched``.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters import metrics, tracing
from entrypoints.http.logging import request_id

METRICS_PATH = "/metrics"

router = APIRouter()


@router.get(METRICS_PATH, include_in_schema=False)
def prometheus_metrics() -> Response:
    """Prometheus's text format; every worker process's values in multiprocess mode."""
    body, content_type = metrics.exposition()
    return Response(content=body, media_type=content_type)


def route_template(scope: Scope) -> str | None:
    """The path template of the route that served ``scope``; ``None`` when none matched."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) and path else None


class RequestMetricsMiddleware:
    """Pure ASGI middleware: observe each request's duration under its route template."""

    def __init__(self, app: ASGIApp, *, record: bool = True) -> None:
        self.app = app
        self.record = record

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status: int | None = None
        method = str(scope.get("method", ""))

        def name_span() -> None:
            route = route_template(scope) or metrics.UNMATCHED_ROUTE
            tracing.name_server_span(method, route, request_id.get())

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                # Now, while the server span is open: it may end with the last body chunk.
                name_span()
            await send(message)

        started = time.perf_counter()
        failed = False
        try:
            await self.app(scope, receive, send_and_watch)
        except Exception:
            failed = True
            if status is None:
                name_span()
            raise
        finally:
            if self.record and (status is not None or failed):
                # No status and no exception: cancelled (the client left); nothing answered.
                metrics.observe_request(
                    route_template(scope), method, status or 500, time.perf_counter() - started
                )
