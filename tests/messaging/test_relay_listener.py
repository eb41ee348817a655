"""The relay's LISTEN connection on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from adapters.database import DatabaseSessionManager
from adapters.outbox import Doorbell, SqlAlchemyOutbox
from adapters.relay import PostgresListener
from tests.messaging.factories import OpenCounterFactory
from tests.messaging.sample_service import make_registry, sql_bus
from tests.messaging.support import DEADLINE, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
async def listener(pg: DatabaseSessionManager) -> AsyncIterator[PostgresListener]:
    listener = PostgresListener(pg.engine.url, Doorbell(), keepalive=0.2, reconnect_delay=0.05)
    task = asyncio.create_task(listener.run())
    try:
        await wait_until(listener.listening.is_set, "the first LISTEN")
        assert await listener.doorbell.wait(DEADLINE)  # the catch-up ring on connecting
        yield listener
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_commit_in_another_process_wakes_the_relay(
    pg: DatabaseSessionManager, listener: PostgresListener
) -> None:
    # A writer with its own doorbell: only NOTIFY can reach the listener's.
    await sql_bus(pg, SqlAlchemyOutbox(make_registry())).handle(OpenCounterFactory.build())

    assert await listener.doorbell.wait(DEADLINE)


async def test_the_listener_listens_again_after_its_connection_is_killed(
    pg: DatabaseSessionManager, listener: PostgresListener, postgres_admin_dsn: str
) -> None:
    killed = listener.backend_pid
    admin = await asyncpg.connect(postgres_admin_dsn)
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", killed)
    finally:
        await admin.close()
    await wait_until(
        lambda: listener.connections == 2 and listener.listening.is_set(), "a new LISTEN"
    )
    assert await listener.doorbell.wait(DEADLINE)  # catch-up ring after reconnecting

    await sql_bus(pg, SqlAlchemyOutbox(make_registry())).handle(OpenCounterFactory.build())

    assert listener.backend_pid != killed
    assert await listener.doorbell.wait(DEADLINE)
