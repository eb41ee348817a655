"""The catalog wired by the kernel's bootstrap, end to end, on the fakes and on PostgreSQL.

HTTP route → command handler → unit of work → outbox → relay → in-process
broker → the catalog's own consumer of ``catalog.events`` → event handler
under the inbox. Nothing here names the example context: a second context
plugs in the same way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager

from adapters.brokers import InProcessBroker
from adapters.database import DatabaseSessionManager
from adapters.migrate import upgrade_to_head_async
from adapters.repository import InMemoryStore
from adapters.settings import Settings
from entrypoints.bootstrap import Container, bootstrap
from entrypoints.http.app import create_app
from entrypoints.messaging import serving_messages
from tests.catalog import EVENTS_STREAM
from tests.catalog import context as catalog
from tests.catalog.domain import Reservation
from tests.messaging.support import wait_until
from tests.support import postgres

MEMORY = pytest.param("memory", marks=pytest.mark.unit)
POSTGRESQL = pytest.param("postgresql", marks=pytest.mark.integration)


@pytest.fixture(params=[MEMORY, POSTGRESQL])
def admin_dsn(request: pytest.FixtureRequest) -> str | None:
    """PostgreSQL's admin DSN for the database variant, ``None`` for the fakes.

    A sync fixture: only those may resolve the (async) server fixture by name,
    so the fake variant never starts a database.
    """
    if request.param == "memory":
        return None
    dsn: str = request.getfixturevalue("postgres_admin_dsn")
    return dsn


@pytest.fixture
async def container(admin_dsn: str | None) -> AsyncIterator[Container]:
    manager = DatabaseSessionManager()
    if admin_dsn is None:
        settings = Settings(database_url="sqlite+aiosqlite://", keel_contexts="tests.catalog")
        built = bootstrap(settings, manager=manager, store=InMemoryStore())
        try:
            yield built
        finally:
            await manager.close()
        return
    admin = admin_dsn
    name = await postgres.create_database(admin, prefix="keel_catalog")
    try:
        url = postgres.sqlalchemy_url(admin, name)
        assert catalog.migrations is not None
        await upgrade_to_head_async(url, [catalog.migrations])
        built = bootstrap(
            Settings(database_url=url, keel_contexts="tests.catalog"), manager=manager
        )
        try:
            yield built
        finally:
            await manager.close()
    finally:
        await postgres.drop_database(admin, name)


@pytest.fixture
async def client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(container=container)
    async with (
        LifespanManager(app) as running,
        serving_messages(container),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=running.app), base_url="http://catalog.test"
        ) as http,
    ):
        yield http


async def reservations(container: Container) -> list[Reservation]:
    async with catalog.wiring(container).uow_factory() as uow:
        return await uow.reservations.list()


async def reserve_one(client: httpx.AsyncClient) -> None:
    added = await client.post(
        "/catalog/products", json={"sku": "L-1", "name": "Lamp", "on_hand": 3}
    )
    assert added.status_code == 201, added.text
    reserved = await client.post(
        "/catalog/products/L-1/reservations", json={"quantity": 2, "order_ref": "o-1"}
    )
    assert reserved.status_code == 201, reserved.text
    assert reserved.json() == {"available": 1}


async def test_a_reservation_over_http_reaches_the_contexts_own_consumer(
    container: Container, client: httpx.AsyncClient
) -> None:
    await reserve_one(client)

    await wait_until(
        lambda: _count(container, 1), "the consumer recorded the reservation", within=10
    )
    (recorded,) = await reservations(container)
    assert (recorded.sku, recorded.quantity, recorded.order_ref) == ("L-1", 2, "o-1")


async def test_a_redelivered_event_is_applied_once(
    container: Container, client: httpx.AsyncClient
) -> None:
    await reserve_one(client)
    await wait_until(lambda: _count(container, 1), "the first delivery applied", within=10)
    broker = container.broker
    assert isinstance(broker, InProcessBroker)
    (sent,) = broker.published[broker.wire_name(EVENTS_STREAM)]

    await broker.publish(EVENTS_STREAM, sent)
    await broker.settled()

    assert len(await reservations(container)) == 1


async def test_a_refused_command_over_http_is_a_problem_of_its_kind(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/catalog/products/none/reservations", json={"quantity": 1, "order_ref": "o-2"}
    )

    assert response.status_code == 404
    assert response.json()["code"] == "product_not_found"


async def test_text_with_a_nul_is_refused_naming_the_field(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/catalog/products", json={"sku": "L-2", "name": "La\u0000mp", "on_hand": 1}
    )

    assert response.status_code == 422
    assert [issue["field"] for issue in response.json()["errors"]] == ["name"]


async def _count(container: Container, expected: int) -> bool:
    return len(await reservations(container)) == expected
