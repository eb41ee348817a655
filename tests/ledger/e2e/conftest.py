"""The ledger app on a private, migrated PostgreSQL database, driven through httpx.

The database is created for the e2e run only and brought up to date with the
real migrations, so these tests also prove that the migrations make a schema
the app can serve. Tests share it and isolate themselves by opening fresh
accounts; nothing is rolled back between them, as in production.

``client`` sends a token of one principal, :data:`OWNER`, with every request;
``stranger`` and ``third`` are clients of two other principals, and
``anonymous`` sends no token; all on the same app.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.engine import make_url

from adapters.database import DatabaseSessionManager
from adapters.migrate import upgrade_to_head_async
from adapters.settings import Settings
from entrypoints.bootstrap import Container, bootstrap
from entrypoints.http.app import create_app
from tests.ledger.wiring import LEDGER_MIGRATIONS
from tests.support import postgres
from tests.support.tokens import bearer_for, new_subject

BASE_URL = "http://testserver"
OWNER = new_subject()
"""The principal behind ``client``'s requests."""
STRANGER = new_subject()


@pytest.fixture(scope="session")
async def e2e_database_url(postgres_url: str) -> AsyncIterator[str]:
    """A database of its own, so that no other suite's ``create_all`` gets in the way."""
    admin = make_url(postgres_url).set(drivername="postgresql", database="postgres")
    admin_dsn = admin.render_as_string(hide_password=False)
    name = await postgres.create_database(admin_dsn, prefix="keel_e2e")
    try:
        url = postgres.sqlalchemy_url(admin_dsn, name)
        await upgrade_to_head_async(url, LEDGER_MIGRATIONS)
        yield url
    finally:
        await postgres.drop_database(admin_dsn, name)


@pytest.fixture(scope="session")
async def container(
    e2e_database_url: str,
) -> AsyncIterator[Container]:
    # A generous pool wait: the concurrency test queues far more requests than
    # connections on a two-core machine, and a 503 there would be a false alarm.
    settings = Settings(database_url=e2e_database_url, db_pool_timeout=60)
    manager = DatabaseSessionManager()
    built = bootstrap(settings, manager=manager)
    try:
        yield built
    finally:
        await manager.close()


@pytest.fixture(scope="session")
async def transport(container: Container) -> AsyncIterator[httpx.ASGITransport]:
    app = create_app(container=container)
    async with LifespanManager(app) as running:
        yield httpx.ASGITransport(app=running.app)


@pytest.fixture(scope="session")
async def client(transport: httpx.ASGITransport) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=transport, base_url=BASE_URL, headers=bearer_for(OWNER)
    ) as http:
        yield http


@pytest.fixture(scope="session")
async def stranger(transport: httpx.ASGITransport) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=transport, base_url=BASE_URL, headers=bearer_for(STRANGER)
    ) as http:
        yield http


@pytest.fixture(scope="session")
async def third(transport: httpx.ASGITransport) -> AsyncIterator[httpx.AsyncClient]:
    """A principal that owns nothing the other two made."""
    async with httpx.AsyncClient(
        transport=transport, base_url=BASE_URL, headers=bearer_for(new_subject())
    ) as http:
        yield http


@pytest.fixture
async def anonymous(transport: httpx.ASGITransport) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        yield http
