"""No outbox row for undone work: the issue's reproduction, on PostgreSQL and on the fakes.

A deposit of 777 made inside a savepoint that raised, then a commit: the
balance did not change, so no ``Added 777`` may reach the outbox. Nor may an
event raised before ``rollback()`` (on PostgreSQL the outbox then read an
aggregate that the rollback had expired, and the commit failed).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from sqlalchemy import select

from adapters.database import DatabaseSessionManager
from adapters.outbox import InMemoryOutbox, SqlAlchemyOutbox, outbox_table, with_outbox
from adapters.repository import InMemoryStore
from tests.messaging.factories import OpenCounterFactory
from tests.messaging.sample import Counter
from tests.messaging.sample_service import (
    CounterUnitOfWork,
    InMemoryCounterUnitOfWork,
    SqlAlchemyCounterUnitOfWork,
    make_registry,
)


class Boom(Exception):
    """Raised by a test on purpose."""


async def _open(uow: CounterUnitOfWork) -> Counter:
    counter = Counter.open(OpenCounterFactory.build().counter_id)
    async with uow:
        uow.counters.add(counter)
        await uow.commit()
    return counter


async def _add_777_in_a_failed_savepoint_then_commit(
    uow: CounterUnitOfWork, counter: Counter
) -> int:
    async with uow:
        found = await uow.counters.get(counter.id)
        assert found is not None
        with contextlib.suppress(Boom):
            async with uow.savepoint():
                found.add(777)
                raise Boom
        await uow.commit()
        return found.value


async def _add_777_then_roll_back_then_commit(uow: CounterUnitOfWork, counter: Counter) -> None:
    async with uow:
        found = await uow.counters.get(counter.id)
        assert found is not None
        found.add(777)
        await uow.rollback()
        await uow.commit()


async def _sql_rows(manager: DatabaseSessionManager) -> list[str]:
    async with manager.session() as session:
        rows = await session.execute(
            select(outbox_table.c.type, outbox_table.c.payload).order_by(outbox_table.c.id)
        )
        return [f"{kind} {payload.get('by', '')}".strip() for kind, payload in rows]


@pytest.fixture
def memory_outbox() -> tuple[InMemoryOutbox, Callable[[], InMemoryCounterUnitOfWork]]:
    store = InMemoryStore()
    outbox = InMemoryOutbox(make_registry())
    return outbox, with_outbox(lambda: InMemoryCounterUnitOfWork(store), outbox)


@pytest.mark.integration
async def test_an_add_undone_by_a_savepoint_writes_no_outbox_row_on_postgresql(
    pg: DatabaseSessionManager,
) -> None:
    factory = with_outbox(
        lambda: SqlAlchemyCounterUnitOfWork(pg.session_factory), SqlAlchemyOutbox(make_registry())
    )
    counter = await _open(factory())

    value = await _add_777_in_a_failed_savepoint_then_commit(factory(), counter)

    assert value == 0
    assert await _sql_rows(pg) == ["CounterOpened"]


@pytest.mark.integration
async def test_an_add_undone_by_rollback_writes_no_outbox_row_on_postgresql(
    pg: DatabaseSessionManager,
) -> None:
    factory = with_outbox(
        lambda: SqlAlchemyCounterUnitOfWork(pg.session_factory), SqlAlchemyOutbox(make_registry())
    )
    counter = await _open(factory())

    await _add_777_then_roll_back_then_commit(factory(), counter)

    assert await _sql_rows(pg) == ["CounterOpened"]


@pytest.mark.unit
async def test_an_add_undone_by_a_savepoint_writes_no_outbox_row_on_the_fake(
    memory_outbox: tuple[InMemoryOutbox, Callable[[], InMemoryCounterUnitOfWork]],
) -> None:
    outbox, factory = memory_outbox
    counter = await _open(factory())

    await _add_777_in_a_failed_savepoint_then_commit(factory(), counter)

    assert [record.type for record in outbox.records] == ["CounterOpened"]


@pytest.mark.unit
async def test_an_add_undone_by_rollback_writes_no_outbox_row_on_the_fake(
    memory_outbox: tuple[InMemoryOutbox, Callable[[], InMemoryCounterUnitOfWork]],
) -> None:
    outbox, factory = memory_outbox
    counter = await _open(factory())

    await _add_777_then_roll_back_then_commit(factory(), counter)

    assert [record.type for record in outbox.records] == ["CounterOpened"]
