"""The outbox, the relay and the inbox on SQLite, the embedded default."""

from __future__ import annotations

import asyncio
import contextlib
from uuid import uuid4

import pytest
from sqlalchemy import select

from adapters.brokers import InProcessBroker
from adapters.database import DatabaseSessionManager
from adapters.inbox import inbox_table
from adapters.outbox import SqlAlchemyOutbox, SqlAlchemyOutboxStore, outbox_table
from adapters.relay import OutboxRelay, create_relay
from service_layer.messagebus import DuplicateMessage
from tests.messaging.factories import AddFactory, OpenCounterFactory
from tests.messaging.sample import Counter
from tests.messaging.sample_service import (
    EVENTS_STREAM,
    SqlAlchemyCounterUnitOfWork,
    make_registry,
    sql_bus,
)
from tests.messaging.support import RecordingPublisher, wait_until

pytestmark = pytest.mark.integration


async def test_a_rolled_back_transaction_writes_nothing(sqlite_db: DatabaseSessionManager) -> None:
    uow = SqlAlchemyCounterUnitOfWork(sqlite_db.session_factory)
    uow.hooks.append(SqlAlchemyOutbox(make_registry()))

    with contextlib.suppress(LookupError):
        async with uow:
            uow.counters.add(Counter.open(uuid4()))
            raise LookupError("the caller gave up")

    assert await SqlAlchemyOutboxStore(sqlite_db.engine).pending_count() == 0


async def test_a_running_relay_publishes_commits_of_its_own_process_at_once(
    sqlite_db: DatabaseSessionManager,
) -> None:
    outbox = SqlAlchemyOutbox(make_registry())
    broker = InProcessBroker()
    relay = create_relay(sqlite_db.engine, broker, doorbell=outbox.doorbell)
    task = asyncio.create_task(relay.run())
    try:
        opened = OpenCounterFactory.build()
        bus = sql_bus(sqlite_db, outbox)
        await bus.handle(opened)
        await bus.handle(AddFactory.build(counter_id=opened.counter_id, by=2))
        await wait_until(lambda: len(broker.published[EVENTS_STREAM]) == 2, "two events")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    [opened_message, added_message] = broker.published[EVENTS_STREAM]
    assert opened_message["type"] == "CounterOpened"
    assert added_message["payload"] == {
        "counter_id": str(opened.counter_id),
        "by": 2,
        "value": 2,
    }


async def test_two_relays_on_sqlite_take_turns_and_publish_each_row_once(
    sqlite_db: DatabaseSessionManager,
) -> None:
    bus = sql_bus(sqlite_db, SqlAlchemyOutbox(make_registry()))
    for _ in range(6):
        await bus.handle(OpenCounterFactory.build())
    store = SqlAlchemyOutboxStore(sqlite_db.engine)
    publisher = RecordingPublisher()

    counts = await asyncio.gather(
        OutboxRelay(store, publisher, batch_size=2).drain(),
        OutboxRelay(store, publisher, batch_size=2).drain(),
    )

    async with sqlite_db.session() as session:
        expected = [str(m) for m in await session.scalars(select(outbox_table.c.message_id))]
    assert sum(counts) == 6
    assert sorted(publisher.ids()) == sorted(expected)


async def test_a_redelivered_command_is_refused_at_its_claim_and_applied_once(
    sqlite_db: DatabaseSessionManager,
) -> None:
    bus = sql_bus(sqlite_db, SqlAlchemyOutbox(make_registry()))
    opened = OpenCounterFactory.build()
    await bus.handle(opened)
    command = AddFactory.build(counter_id=opened.counter_id, by=2)
    assert await bus.handle(command, once=True) == 2

    with pytest.raises(DuplicateMessage):
        await bus.handle(command, once=True)

    async with sqlite_db.session() as session:
        assert (await session.scalars(select(inbox_table.c.message_id))).all() == [
            command.message_id
        ]
    assert await bus.handle(AddFactory.build(counter_id=opened.counter_id, by=0)) == 2
