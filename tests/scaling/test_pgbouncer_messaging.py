"""The whole message flow behind PgBouncer: writes through the pooler, LISTEN and the relay direct.

``DATABASE_URL`` points at a real pgbouncer in transaction mode, with
``DB_PGBOUNCER=true``; ``DATABASE_DIRECT_URL`` at PostgreSQL itself, which
the relay uses for LISTEN and its per-key locks (session state a transaction
pooler would not keep). The catalog context, as bootstrap wires it: HTTP →
outbox → relay → its own consumer → inbox.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from adapters.database import DatabaseSessionManager
from adapters.migrate import upgrade_to_head_async
from adapters.settings import Settings
from entrypoints.bootstrap import Container, bootstrap
from entrypoints.http.app import create_app
from entrypoints.messaging import serving_messages
from tests.catalog import context as catalog
from tests.messaging.support import wait_until
from tests.support import postgres
from tests.support.pgbouncer import PgBouncer, running_pgbouncer

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("pgbouncer_binary")]


@pytest.fixture
async def pooled(postgres_admin_dsn: str) -> AsyncIterator[tuple[PgBouncer, str]]:
    name = await postgres.create_database(postgres_admin_dsn, prefix="keel_pgb_flow")
    try:
        direct = postgres.sqlalchemy_url(postgres_admin_dsn, name)
        assert catalog.migrations is not None
        await upgrade_to_head_async(direct, [catalog.migrations])
        async with running_pgbouncer(postgres_admin_dsn, pool_size=2) as bouncer:
            yield bouncer, name
    finally:
        await postgres.drop_database(postgres_admin_dsn, name)


@pytest.fixture
async def container(
    pooled: tuple[PgBouncer, str], postgres_admin_dsn: str
) -> AsyncIterator[Container]:
    bouncer, name = pooled
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=bouncer.url(name),
        database_direct_url=postgres.sqlalchemy_url(postgres_admin_dsn, name),
        db_pgbouncer=True,
        keel_contexts="tests.catalog",
    )
    manager = DatabaseSessionManager()
    try:
        yield bootstrap(settings, manager=manager)
    finally:
        await manager.close()


async def test_a_write_through_the_pooler_reaches_the_consumer_through_the_direct_relay(
    container: Container,
) -> None:
    assert container.session_manager.direct_engine is not container.session_manager.engine
    transport = httpx.ASGITransport(app=create_app(container=container))
    async with (
        serving_messages(container),
        httpx.AsyncClient(transport=transport, base_url="http://catalog.test") as client,
    ):
        added = await client.post(
            "/catalog/products", json={"sku": "P", "name": "Pen", "on_hand": 9}
        )
        assert added.status_code == 201, added.text
        for order in range(5):
            reserved = await client.post(
                "/catalog/products/P/reservations", json={"quantity": 1, "order_ref": f"o{order}"}
            )
            assert reserved.status_code == 201, reserved.text

        async def recorded() -> bool:
            async with catalog.wiring(container).uow_factory() as uow:
                return len(await uow.reservations.list()) == 5

        await wait_until(recorded, "five reservations recorded by the consumer", within=20)
