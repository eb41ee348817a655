"""The FastAPI application factory, generic over the bounded contexts it serves.

``create_app()`` builds a fresh app each call and creates no connection: the
lifespan bootstraps the container at start-up and closes the database at
shutdown. The routers are those of the contexts ``KEEL_CONTEXTS`` names (or of
the given container's contexts), beside the kernel's probes and docs. A test
(or an embedding application) that already has a container passes it in and
keeps ownership of it: the app then neither bootstraps nor closes anything.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp

from adapters.settings import Settings, load_settings
from entrypoints.bootstrap import Container, bootstrap
from entrypoints.context import BoundedContext, load_contexts
from entrypoints.http import health_routes
from entrypoints.http.docs import install_docs
from entrypoints.http.limits import BodySizeLimit
from entrypoints.http.logging import RequestLogMiddleware
from entrypoints.http.problems import problem_handlers
from entrypoints.http.security import SecurityHeaders, install_security
from entrypoints.messaging import serving_messages

MAX_BODY_BYTES = 64 * 1024
"""The largest request body read; a context's requests are expected to be far smaller."""

DESCRIPTION = """\
A Keel service. Every error is an RFC 9457 `application/problem+json`
document with a stable `code`.
"""


class _LoggedApp(FastAPI):
    def build_middleware_stack(self) -> ASGIApp:
        # Outside Starlette's ServerErrorMiddleware, which add_middleware cannot
        # reach: so even its last-resort 500 is logged and carries X-Request-ID
        # and the security headers.
        return RequestLogMiddleware(SecurityHeaders(super().build_middleware_stack()))


def create_app(
    settings: Settings | None = None,
    *,
    container: Container | None = None,
) -> FastAPI:
    """The HTTP app; settings are read from the environment when not given."""
    contexts: list[BoundedContext[Any]]
    if container is not None:
        settings = container.settings
        contexts = [wiring.context for wiring in container.contexts.values()]
    else:
        settings = settings if settings is not None else load_settings()
        contexts = load_contexts(settings.context_names)
    configured = settings

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if container is not None:
            yield
            return
        owned = bootstrap(configured, contexts)
        app.state.container = owned
        try:
            async with serving_messages(owned):  # the relay, and the embedded consumer
                yield
        finally:
            await owned.session_manager.close()
            if owned.rate_limiter is not None:
                await owned.rate_limiter.close()

    app = _LoggedApp(
        title="Keel",
        version=version("keel"),
        description=DESCRIPTION
        + "\nBounded contexts: "
        + (", ".join(f"`{context.name}`" for context in contexts) or "none")
        + ".",
        lifespan=lifespan,
        docs_url=None,  # served from local files by install_docs
        redoc_url=None,  # ReDoc would load its script from a CDN
        openapi_url="/openapi.json" if settings.docs_enabled else None,
        exception_handlers=problem_handlers(),
    )
    app.add_middleware(BodySizeLimit, max_body_size=MAX_BODY_BYTES)
    install_security(app, settings)
    if container is not None:
        app.state.container = container
    app.include_router(health_routes.router)
    for context in contexts:
        for router in context.routers:
            app.include_router(router)
    if settings.docs_enabled:
        install_docs(app)
    return app
