"""Read replicas: reads go to a healthy streaming replica, else to the primary.

One throwaway primary with a real streaming replica (``tests/support/replica.py``)
serves the module; the workload is the kernel's things model.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from adapters.database import DatabaseSessionManager
from adapters.migrate import upgrade_to_head_async
from adapters.replicas import ReplicaRouter
from adapters.settings import Settings
from entrypoints.bootstrap import bootstrap
from entrypoints.http.app import create_app
from tests.catalog import context as catalog
from tests.kernel.things import Thing
from tests.kernel.things_uow import SqlAlchemyThingUnitOfWork
from tests.messaging.support import wait_until
from tests.scaling.conftest import create_things_table, unavailable
from tests.support import postgres
from tests.support.replica import Pair, primary_with_replica

pytestmark = pytest.mark.integration

MAX_LAG = 0.5


@pytest.fixture(scope="module")
async def pair() -> AsyncIterator[Pair]:
    try:
        async with primary_with_replica() as started:
            await create_things_table(postgres.sqlalchemy_url(started.primary.dsn, "postgres"))
            yield started
    except postgres.PostgresUnavailable as exc:
        unavailable(f"no primary with a replica: {exc}")


@pytest.fixture
async def primary(pair: Pair) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(postgres.sqlalchemy_url(pair.primary.dsn, "postgres"))
    try:
        yield engine
    finally:
        await engine.dispose()


def replica_url(pair: Pair) -> str:
    return postgres.sqlalchemy_url(pair.replica.dsn, "postgres")


@pytest.fixture
async def router(pair: Pair, primary: AsyncEngine) -> AsyncIterator[ReplicaRouter]:
    made = ReplicaRouter.from_urls(primary, [replica_url(pair)], max_lag=MAX_LAG, check_timeout=2.0)
    try:
        yield made
    finally:
        await made.close()


async def on_replica(sessions: async_sessionmaker[AsyncSession]) -> bool:
    async with sessions() as session:
        return bool((await session.execute(text("SELECT pg_is_in_recovery()"))).scalar())


async def store(primary: AsyncEngine, thing: Thing) -> None:
    async with SqlAlchemyThingUnitOfWork(
        async_sessionmaker(primary, expire_on_commit=False)
    ) as uow:
        uow.things.add(thing)
        await uow.commit()


async def test_a_read_only_unit_of_work_finds_a_committed_thing_on_the_replica(
    router: ReplicaRouter, primary: AsyncEngine
) -> None:
    thing = Thing("replicated")
    await store(primary, thing)

    async def replicated() -> bool:
        await router.check()
        sessions = router.session_factory
        if not await on_replica(sessions):
            return False
        async with SqlAlchemyThingUnitOfWork(sessions) as uow:
            return await uow.things.get(thing.id) is not None

    await wait_until(replicated, "the thing read from the replica")


async def test_a_replica_lagging_beyond_the_bound_is_not_read_until_it_catches_up(
    router: ReplicaRouter, primary: AsyncEngine, pair: Pair
) -> None:
    replica = await asyncpg.connect(pair.replica.dsn)
    try:
        await replica.execute("SELECT pg_wal_replay_pause()")
        await store(primary, Thing("written while the replica stands still"))

        async def left_for_the_primary() -> bool:
            await router.check()
            return not await on_replica(router.session_factory)

        await wait_until(left_for_the_primary, "the replica to be left for the primary")
        assert "behind" in router.replicas[0].reason
    finally:
        await replica.execute("SELECT pg_wal_replay_resume()")
        await replica.close()

    async def back_on_the_replica() -> bool:
        await router.check()
        return await on_replica(router.session_factory)

    await wait_until(back_on_the_replica, "the replica to be read again")


async def test_a_replica_that_is_down_is_not_read_and_the_change_is_logged_once(
    router: ReplicaRouter, pair: Pair, caplog: pytest.LogCaptureFixture
) -> None:
    await router.check()
    await pair.replica.halt()
    try:
        with caplog.at_level(logging.INFO, logger="adapters.replicas"):
            await router.check()
            await router.check()

        assert not await on_replica(router.session_factory)
        assert router.replicas[0].reason.startswith("unreachable")
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert [r.getMessage() for r in warnings] == [
            "replica not used; reading from the primary instead"
        ]
    finally:
        await pair.replica.resume()

    async def back_on_the_replica() -> bool:
        await router.check()
        return await on_replica(router.session_factory)

    await wait_until(back_on_the_replica, "the replica to be read again")


async def test_a_server_that_is_not_in_recovery_is_never_read_as_a_replica(
    pair: Pair, primary: AsyncEngine
) -> None:
    not_a_replica = postgres.sqlalchemy_url(pair.primary.dsn, "postgres")
    router = ReplicaRouter.from_urls(primary, [not_a_replica], max_lag=MAX_LAG)
    try:
        await router.check()

        assert router.session_factory is router.primary_sessions
        assert router.replicas[0].reason.startswith("not in recovery")
    finally:
        await router.close()


@pytest.mark.unit
async def test_without_replicas_every_read_goes_to_the_primary() -> None:
    engine = create_async_engine("sqlite+aiosqlite://")
    router = ReplicaRouter(engine, [])
    try:
        async with router:
            assert router.session_factory is router.primary_sessions
    finally:
        await engine.dispose()


async def test_a_contexts_get_route_reads_from_the_replica_that_bootstrap_wired(
    pair: Pair,
) -> None:
    primary_url = postgres.sqlalchemy_url(pair.primary.dsn, "postgres")
    assert catalog.migrations is not None
    await upgrade_to_head_async(primary_url, [catalog.migrations])
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=primary_url,
        database_replica_urls=replica_url(pair),
        db_replica_max_lag_seconds=60,  # a paused replica stays "fit": reads must go there
        keel_contexts="tests.catalog",
    )
    manager = DatabaseSessionManager()
    container = bootstrap(settings, manager=manager)
    replica = await asyncpg.connect(pair.replica.dsn)
    try:
        assert container.replicas is not None
        async with container.replicas:
            transport = httpx.ASGITransport(app=create_app(container=container))
            async with httpx.AsyncClient(transport=transport, base_url="http://r.test") as client:
                await replica.execute("SELECT pg_wal_replay_pause()")
                added = await client.post(
                    "/catalog/products", json={"sku": "R-1", "name": "Rope", "on_hand": 1}
                )
                assert added.status_code == 201, added.text

                assert (await client.get("/catalog/products/R-1")).status_code == 404

                await replica.execute("SELECT pg_wal_replay_resume()")

                async def visible() -> bool:
                    return (await client.get("/catalog/products/R-1")).status_code == 200

                await wait_until(visible, "the replica to replay the product")
    finally:
        await replica.execute("SELECT pg_wal_replay_resume()")
        await replica.close()
        await manager.close()
