"""The FastAPI application factory.

``create_app()`` builds a fresh app each call and creates no connection: the
lifespan bootstraps the container at start-up and closes the database at
shutdown. A test (or an embedding application) that already has a container
passes it in and keeps ownership of it: the app then neither bootstraps nor
closes anything.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

from fastapi import FastAPI
from starlette.types import ASGIApp

from adapters.container import DependencyContainer
from adapters.settings import Settings, load_settings
from entrypoints.bootstrap import bootstrap
from entrypoints.http import health_routes, ledger_routes
from entrypoints.http.docs import install_docs
from entrypoints.http.limits import BodySizeLimit
from entrypoints.http.logging import RequestLogMiddleware
from entrypoints.http.problems import problem_handlers
from entrypoints.messaging import serving_messages
from service_layer.ledger.unit_of_work import LedgerUnitOfWork

MAX_BODY_BYTES = 64 * 1024
"""The largest request body read; every valid ledger request is far below 1 KiB."""

DESCRIPTION = """\
A money ledger: accounts, deposits, withdrawals and transfers, with idempotent
writes keyed by the client's `reference`. Every error is an RFC 9457
`application/problem+json` document with a stable `code`.
"""


class _LoggedApp(FastAPI):
    def build_middleware_stack(self) -> ASGIApp:
        # Outside Starlette's ServerErrorMiddleware, which add_middleware cannot
        # reach: so even its last-resort 500 is logged and carries X-Request-ID.
        return RequestLogMiddleware(super().build_middleware_stack())


def create_app(
    settings: Settings | None = None,
    *,
    container: DependencyContainer[LedgerUnitOfWork] | None = None,
) -> FastAPI:
    """The ledger's HTTP app; settings are read from the environment when not given."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if container is not None:
            yield
            return
        owned = bootstrap(settings if settings is not None else load_settings())
        app.state.container = owned
        try:
            async with serving_messages(owned):  # the relay, and the embedded consumer
                yield
        finally:
            await owned.session_manager.close()

    app = _LoggedApp(
        title="Keel ledger",
        version=version("keel"),
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served from local files by install_docs
        redoc_url=None,  # ReDoc would load its script from a CDN
        exception_handlers=problem_handlers(),
    )
    app.add_middleware(BodySizeLimit, max_body_size=MAX_BODY_BYTES)
    if container is not None:
        app.state.container = container
    app.include_router(health_routes.router)
    app.include_router(ledger_routes.router)
    install_docs(app)
    return app
