"""Keel behind PgBouncer in transaction pooling mode, with ``DB_PGBOUNCER=true``.

A real pgbouncer (``tests/support/pgbouncer.py``) with two server
connections serves twenty concurrent clients; every unit of work is the
kernel's things model.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from adapters.database import DatabaseSessionManager
from adapters.settings import Settings
from tests.kernel.things import Thing
from tests.kernel.things_uow import SqlAlchemyThingUnitOfWork
from tests.scaling.conftest import create_things_table
from tests.support import postgres
from tests.support.pgbouncer import PgBouncer, running_pgbouncer

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("pgbouncer_binary")]

CLIENTS = 20
ROUNDS = 5


def engine_options(url: str, **settings: Any) -> dict[str, Any]:
    """The options ``keel`` would use for ``DATABASE_URL=url`` and these settings."""
    values = {"database_url": url, "db_pool_size": CLIENTS, "db_max_overflow": 0, **settings}
    return Settings(_env_file=None, **values).engine_options()  # type: ignore[call-arg]


@pytest.fixture
async def pooler(postgres_admin_dsn: str) -> AsyncIterator[PgBouncer]:
    async with running_pgbouncer(postgres_admin_dsn, pool_size=2) as bouncer:
        yield bouncer


@pytest.fixture
async def manager(pooler: PgBouncer, things_database: str) -> AsyncIterator[DatabaseSessionManager]:
    url = pooler.url(things_database)
    made = DatabaseSessionManager()
    made.init(url, transaction_pooler=True, **engine_options(url, db_pgbouncer=True))
    try:
        yield made
    finally:
        await made.close()


async def create_and_count(manager: DatabaseSessionManager, client: int) -> None:
    """One client's work: units of work that write, read back and update a thing."""
    for round_ in range(ROUNDS):
        thing = Thing(f"client {client} round {round_}")
        async with SqlAlchemyThingUnitOfWork(manager.session_factory) as uow:
            uow.things.add(thing)
            await uow.commit()
        async with SqlAlchemyThingUnitOfWork(manager.session_factory) as uow:
            stored = await uow.things.get(thing.id)
            assert stored is not None
            stored.increment()
            await uow.commit()


async def count_things(manager: DatabaseSessionManager) -> int:
    async with manager.session() as session:
        total = (await session.execute(text("SELECT sum(count) FROM kernel_things"))).scalar()
        return int(total or 0)


async def test_twenty_concurrent_clients_share_two_server_connections_without_statement_errors(
    manager: DatabaseSessionManager, postgres_admin_dsn: str, things_database: str
) -> None:
    async with asyncio.timeout(60):
        await asyncio.gather(*(create_and_count(manager, client) for client in range(CLIENTS)))

    assert await count_things(manager) == CLIENTS * ROUNDS
    server = await asyncpg.connect(postgres_admin_dsn)
    try:
        backends = await server.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", things_database
        )
    finally:
        await server.close()
    assert backends <= 2


async def read_back(manager: DatabaseSessionManager, ident: Any) -> None:
    """One client's reads, through the read-only sessions the GET routes use."""
    for _ in range(ROUNDS * 4):
        async with SqlAlchemyThingUnitOfWork(manager.read_session_factory) as uow:
            assert await uow.things.get(ident) is not None


async def test_twenty_concurrent_readers_share_two_server_connections_without_statement_errors(
    manager: DatabaseSessionManager,
) -> None:
    thing = Thing("read through the pooler")
    async with SqlAlchemyThingUnitOfWork(manager.session_factory) as uow:
        uow.things.add(thing)
        await uow.commit()

    async with asyncio.timeout(60):
        await asyncio.gather(*(read_back(manager, thing.id) for _ in range(CLIENTS)))


async def test_without_the_pgbouncer_options_the_same_workload_fails_on_prepared_statements(
    pooler: PgBouncer, things_database: str
) -> None:
    # The control experiment: proves the workload above does meet the problem.
    url = pooler.url(things_database)
    plain = DatabaseSessionManager()
    plain.init(url, **engine_options(url, db_pgbouncer=False, db_statement_timeout_ms=0))
    try:
        async with asyncio.timeout(60):
            outcomes = await asyncio.gather(
                *(create_and_count(plain, client) for client in range(CLIENTS)),
                return_exceptions=True,
            )
    finally:
        await plain.close()

    assert any("prepared statement" in str(outcome) for outcome in outcomes)


async def test_without_the_pgbouncer_options_the_pooler_refuses_statement_timeout_at_connect(
    pooler: PgBouncer, things_database: str
) -> None:
    url = pooler.url(things_database)
    plain = DatabaseSessionManager()
    plain.init(url, **engine_options(url, db_pgbouncer=False, db_statement_timeout_ms=1000))
    try:
        with pytest.raises(DBAPIError, match="unsupported startup parameter: statement_timeout"):
            async with plain.session() as session:
                await session.execute(text("SELECT 1"))
    finally:
        await plain.close()


async def test_a_statement_longer_than_the_timeout_is_cancelled_and_the_pool_stays_usable(
    pooler: PgBouncer, things_database: str
) -> None:
    url = pooler.url(things_database)
    timed = DatabaseSessionManager()
    timed.init(url, **engine_options(url, db_pgbouncer=True, db_statement_timeout_ms=300))
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            async with timed.session() as session:
                await session.execute(text("SELECT pg_sleep(10)"))
        assert time.monotonic() - started < 5

        async with timed.session() as session:
            assert (await session.execute(text("SELECT 1"))).scalar() == 1
    finally:
        await timed.close()


async def test_after_postgresql_restarts_behind_the_pooler_the_next_unit_of_work_succeeds() -> None:
    cluster = await postgres.start_throwaway_cluster()
    try:
        name = await postgres.create_database(cluster.dsn, prefix="keel_restart")
        await create_things_table(postgres.sqlalchemy_url(cluster.dsn, name))
        async with running_pgbouncer(cluster.dsn, pool_size=2) as bouncer:
            url = bouncer.url(name)
            manager = DatabaseSessionManager()
            manager.init(url, **engine_options(url, db_pgbouncer=True))
            try:
                await create_and_count(manager, client=1)

                await cluster.restart()

                async with asyncio.timeout(30):
                    await create_and_count(manager, client=2)
                assert await count_things(manager) == 2 * ROUNDS
            finally:
                await manager.close()
    finally:
        await cluster.stop()
