"""The sync task and the async services on one PostgreSQL database, with real commits.

Both use :class:`Part` and its mapping; the async side writes through
asyncpg, the task through psycopg 3 in a worker thread, as a Celery worker
beside the web service would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from uuid import UUID

import pytest

from adapters.sync_database import sync_session_manager
from service_layer.retry import RetryPolicy, retrying_sync
from tests.kernel.contract.conftest import PartUowFactory
from tests.kernel.contract.steps import load_part, store_parts
from tests.kernel.factories import PartFactory
from tests.kernel.parts import PartRestocked
from tests.kernel.parts_uow import SqlAlchemyPartUnitOfWork, SqlAlchemySyncPartUnitOfWork
from tests.kernel.sync.restock import restock_low_parts, restock_task
from tests.support.databases import SqlDatabase, SyncSqlDatabase

pytestmark = pytest.mark.integration

NO_PAUSE = RetryPolicy(attempts=3, base_delay=0, max_delay=0)


@pytest.fixture
async def async_parts(postgres_database: SqlDatabase) -> AsyncIterator[PartUowFactory]:
    """Async units of work that really commit; every table is emptied afterwards."""
    await postgres_database.ensure_schema()
    try:
        yield lambda: SqlAlchemyPartUnitOfWork(postgres_database.session_factory)
    finally:
        await postgres_database.empty()


@pytest.fixture
def worker(sync_postgres_database: SyncSqlDatabase) -> Iterator[None]:
    """The task's process-wide ``SessionLocal``, bound to the same database."""
    sync_session_manager.init(sync_postgres_database.url)
    try:
        yield
    finally:
        sync_session_manager.close()


async def stock_of(async_parts: PartUowFactory, ident: UUID) -> tuple[int, int]:
    part = await load_part(async_parts, ident)
    assert part is not None
    return part.stock, part.version


async def test_the_task_restocks_what_the_async_service_stored(
    async_parts: PartUowFactory, worker: None
) -> None:
    low, high = PartFactory.build(stock=1), PartFactory.build(stock=50)
    await store_parts(async_parts, low, high)

    restocked = await asyncio.to_thread(restock_task, 10, 25)

    assert restocked == 1
    assert await stock_of(async_parts, low.id) == (26, 2)
    assert await stock_of(async_parts, high.id) == (50, 1)


async def test_the_task_leaves_retired_parts_alone(
    async_parts: PartUowFactory, sync_postgres_database: SyncSqlDatabase
) -> None:
    retired = PartFactory.build(stock=0, retired_at=datetime(2024, 1, 1, tzinfo=UTC))
    active = PartFactory.build(stock=0)
    await store_parts(async_parts, retired, active)
    uow = SqlAlchemySyncPartUnitOfWork(sync_postgres_database.session_factory)

    restocked = await asyncio.to_thread(restock_low_parts, uow, below=1, by=5)

    assert restocked == [active.id]


async def test_the_task_raises_the_same_domain_events(
    async_parts: PartUowFactory, sync_postgres_database: SyncSqlDatabase
) -> None:
    part = PartFactory.build(stock=0)
    await store_parts(async_parts, part)
    uow = SqlAlchemySyncPartUnitOfWork(sync_postgres_database.session_factory)

    await asyncio.to_thread(restock_low_parts, uow, below=1, by=5)

    events = uow.collect_committed_events()
    assert [(e.part_id, e.stock) for e in events if isinstance(e, PartRestocked)] == [(part.id, 5)]


async def test_an_async_writer_that_wins_makes_the_task_retry_on_fresh_data(
    async_parts: PartUowFactory, sync_postgres_database: SyncSqlDatabase
) -> None:
    part = PartFactory.build(stock=0)
    await store_parts(async_parts, part)
    loop = asyncio.get_running_loop()
    attempts: list[int] = []

    async def async_service_adds_five() -> None:
        async with async_parts() as uow:
            found = await uow.parts.get(part.id)
            assert found is not None
            found.restock(5)
            await uow.commit()

    def task_adds_one() -> None:
        attempts.append(len(attempts) + 1)
        with SqlAlchemySyncPartUnitOfWork(sync_postgres_database.session_factory) as uow:
            found = uow.parts.get(part.id)
            assert found is not None
            found.restock(1)
            if len(attempts) == 1:  # the async service commits between our read and write
                asyncio.run_coroutine_threadsafe(async_service_adds_five(), loop).result()
            uow.commit()

    await asyncio.to_thread(retrying_sync, task_adds_one, NO_PAUSE)

    assert attempts == [1, 2]
    assert await stock_of(async_parts, part.id) == (6, 3)
