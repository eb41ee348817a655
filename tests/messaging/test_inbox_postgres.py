"""The inbox on real PostgreSQL: a redelivered message is applied once."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from adapters.database import DatabaseSessionManager
from adapters.inbox import inbox_table
from adapters.outbox import SqlAlchemyOutbox
from service_layer.messagebus import DuplicateMessage
from tests.messaging.factories import TakeNoteFactory
from tests.messaging.sample import Note
from tests.messaging.sample_service import make_registry, sql_bus

pytestmark = pytest.mark.integration


async def count(manager: DatabaseSessionManager, what: object) -> int:
    async with manager.session() as session:
        found = await session.scalar(select(func.count()).select_from(what))  # type: ignore[arg-type]
        return int(found or 0)


async def test_a_redelivered_command_is_applied_once(pg: DatabaseSessionManager) -> None:
    bus = sql_bus(pg, SqlAlchemyOutbox(make_registry()))
    command = TakeNoteFactory.build()
    await bus.handle(command, once=True)

    with pytest.raises(DuplicateMessage):
        await bus.handle(command, once=True)

    assert (await count(pg, Note), await count(pg, inbox_table)) == (1, 1)


async def test_two_concurrent_deliveries_of_one_command_apply_it_once(
    pg: DatabaseSessionManager,
) -> None:
    # Both deliveries pass the inbox check and do the work before either commits.
    bus = sql_bus(pg, SqlAlchemyOutbox(make_registry()), gate=asyncio.Barrier(2))
    command = TakeNoteFactory.build()

    outcomes = await asyncio.gather(
        bus.handle(command, once=True), bus.handle(command, once=True), return_exceptions=True
    )

    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["DuplicateMessage", "UUID"]
    assert (await count(pg, Note), await count(pg, inbox_table)) == (1, 1)


async def test_other_messages_are_not_mistaken_for_duplicates(pg: DatabaseSessionManager) -> None:
    bus = sql_bus(pg, SqlAlchemyOutbox(make_registry()))
    command = TakeNoteFactory.build()

    await bus.handle(command, once=True)
    await bus.handle(TakeNoteFactory.build(counter_id=command.counter_id), once=True)

    assert await count(pg, Note) == 2
