"""Concurrent writers on PostgreSQL: nothing is lost, the loser can simply run again.

Every test here runs two real transactions at once (``asyncio.gather``), on
the kernel's own committing session factory; the tables are emptied after.
A barrier makes both writers read before either writes, so the race is
certain rather than likely. Retried attempts skip the barrier: the other
writer has moved on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from uuid import UUID

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.errors import ConcurrencyError
from service_layer.retry import RetryPolicy, retrying
from tests.kernel.contract.steps import load, store
from tests.kernel.factories import ThingFactory
from tests.kernel.things_uow import SqlAlchemyThingUnitOfWork
from tests.support.databases import SqlDatabase

pytestmark = pytest.mark.integration

RETRY = RetryPolicy(attempts=5, base_delay=0.001, max_delay=0.01)


class Race:
    """Two writers that meet at a barrier on their first attempt only."""

    def __init__(self) -> None:
        self.barrier = asyncio.Barrier(2)
        self.attempts = 0

    async def meet(self, attempt: int) -> None:
        if attempt == 1:
            await asyncio.wait_for(self.barrier.wait(), timeout=10)


def writer(
    session_factory: async_sessionmaker[AsyncSession], thing_id: UUID, race: Race
) -> Callable[[], Awaitable[None]]:
    """An operation that reads the thing, meets the other writer, and increments it."""
    attempt = 0

    async def increment() -> None:
        nonlocal attempt
        attempt += 1
        race.attempts += 1
        async with SqlAlchemyThingUnitOfWork(session_factory) as uow:
            thing = await uow.things.get(thing_id)
            assert thing is not None
            await race.meet(attempt)
            thing.increment()
            await uow.commit()

    return increment


async def test_of_two_writers_exactly_one_commits_and_the_other_gets_concurrency_error(
    postgres_session_factory: async_sessionmaker[AsyncSession],
) -> None:
    thing = ThingFactory.build(count=0)
    await store(lambda: SqlAlchemyThingUnitOfWork(postgres_session_factory), thing)
    race = Race()
    first, second = (writer(postgres_session_factory, thing.id, race) for _ in range(2))

    outcomes = await asyncio.gather(first(), second(), return_exceptions=True)

    assert sorted(type(o).__name__ for o in outcomes) == ["ConcurrencyError", "NoneType"]
    stored = await load(lambda: SqlAlchemyThingUnitOfWork(postgres_session_factory), thing.id)
    assert stored is not None
    assert (stored.count, stored.version) == (1, 2)


async def test_with_retrying_both_increments_are_applied(
    postgres_session_factory: async_sessionmaker[AsyncSession],
) -> None:
    thing = ThingFactory.build(count=0)
    await store(lambda: SqlAlchemyThingUnitOfWork(postgres_session_factory), thing)
    race = Race()
    first, second = (writer(postgres_session_factory, thing.id, race) for _ in range(2))

    await asyncio.gather(retrying(first, RETRY), retrying(second, RETRY))

    stored = await load(lambda: SqlAlchemyThingUnitOfWork(postgres_session_factory), thing.id)
    assert stored is not None
    assert (stored.count, stored.version) == (2, 3)
    assert race.attempts == 3


@pytest.fixture
def repeatable_read_factory(
    postgres_database: SqlDatabase,
    postgres_session_factory: async_sessionmaker[AsyncSession],
) -> async_sessionmaker[AsyncSession]:
    engine = postgres_database.manager.engine.execution_options(isolation_level="REPEATABLE READ")
    return async_sessionmaker(engine, expire_on_commit=False)


async def test_a_serialization_failure_becomes_concurrency_error_with_its_sqlstate(
    repeatable_read_factory: async_sessionmaker[AsyncSession],
) -> None:
    thing = ThingFactory.build(count=0)
    await store(lambda: SqlAlchemyThingUnitOfWork(repeatable_read_factory), thing)
    race = Race()
    first, second = (writer(repeatable_read_factory, thing.id, race) for _ in range(2))

    outcomes = await asyncio.gather(first(), second(), return_exceptions=True)

    (failure,) = [o for o in outcomes if o is not None]
    assert isinstance(failure, ConcurrencyError)
    assert failure.sqlstate == "40001"


async def test_a_serialization_failure_is_retried(
    repeatable_read_factory: async_sessionmaker[AsyncSession],
) -> None:
    thing = ThingFactory.build(count=0)
    await store(lambda: SqlAlchemyThingUnitOfWork(repeatable_read_factory), thing)
    race = Race()
    first, second = (writer(repeatable_read_factory, thing.id, race) for _ in range(2))

    await asyncio.gather(retrying(first, RETRY), retrying(second, RETRY))

    stored = await load(lambda: SqlAlchemyThingUnitOfWork(repeatable_read_factory), thing.id)
    assert stored is not None
    assert stored.count == 2
    assert race.attempts == 3, "one writer was refused and ran again"


def crossing_writer(
    session_factory: async_sessionmaker[AsyncSession],
    order: tuple[UUID, UUID],
    race: Race,
    failures: list[ConcurrencyError],
) -> Callable[[], Awaitable[None]]:
    """Locks the two things in ``order``; two of these in opposite orders deadlock."""
    attempt = 0

    async def increment_both() -> None:
        nonlocal attempt
        attempt += 1
        try:
            async with SqlAlchemyThingUnitOfWork(session_factory) as uow:
                # Superuser-only setting (the test servers run as postgres):
                # detect the deadlock in 20 ms instead of the default second.
                await uow.session.execute(text("SET LOCAL deadlock_timeout = '20ms'"))
                for position, ident in enumerate(order):
                    thing = await uow.things.get_for_update(ident)
                    assert thing is not None
                    thing.increment()
                    if position == 0:
                        await race.meet(attempt)
                await uow.commit()
        except ConcurrencyError as exc:
            failures.append(exc)
            raise

    return increment_both


async def test_a_deadlock_becomes_concurrency_error_and_is_retried(
    postgres_session_factory: async_sessionmaker[AsyncSession],
) -> None:
    left, right = ThingFactory.build(count=0), ThingFactory.build(count=0)
    await store(lambda: SqlAlchemyThingUnitOfWork(postgres_session_factory), left, right)
    race, failures = Race(), list[ConcurrencyError]()
    forwards = crossing_writer(postgres_session_factory, (left.id, right.id), race, failures)
    backwards = crossing_writer(postgres_session_factory, (right.id, left.id), race, failures)

    await asyncio.gather(retrying(forwards, RETRY), retrying(backwards, RETRY))

    assert [failure.sqlstate for failure in failures] == ["40P01"]
    for ident in (left.id, right.id):
        stored = await load(lambda: SqlAlchemyThingUnitOfWork(postgres_session_factory), ident)
        assert stored is not None
        assert stored.count == 2
