"""The outbox and relay semantics on the in-memory unit of work and broker."""

from __future__ import annotations

import pytest

from adapters.brokers import InProcessBroker
from adapters.outbox import InMemoryOutbox, with_outbox
from adapters.relay import OutboxRelay
from adapters.repository import InMemoryStore
from service_layer.messagebus import MessageBus
from tests.messaging.factories import AddFactory, OpenCounterFactory
from tests.messaging.sample import Add, Counter, OpenCounter
from tests.messaging.sample_service import (
    EVENTS_STREAM,
    InMemoryCounterUnitOfWork,
    add,
    make_registry,
    open_counter,
)
from tests.messaging.support import RecordingPublisher

pytestmark = pytest.mark.unit


def make_outbox_and_bus() -> tuple[InMemoryOutbox, MessageBus[InMemoryCounterUnitOfWork]]:
    store = InMemoryStore()
    outbox = InMemoryOutbox(make_registry())
    bus = MessageBus(with_outbox(lambda: InMemoryCounterUnitOfWork(store), outbox))
    bus.register_command(OpenCounter, open_counter)
    bus.register_command(Add, add)
    return outbox, bus


async def test_committed_events_for_other_services_land_in_the_outbox() -> None:
    outbox, bus = make_outbox_and_bus()
    opened = OpenCounterFactory.build()

    await bus.handle(opened)
    await bus.handle(AddFactory.build(counter_id=opened.counter_id, by=4))

    assert [(r.type, r.stream, r.key) for r in outbox.pending()] == [
        ("CounterOpened", EVENTS_STREAM, f"Counter:{opened.counter_id}"),
        ("Added", EVENTS_STREAM, f"Counter:{opened.counter_id}"),
    ]


async def test_a_rolled_back_block_writes_nothing_to_the_outbox() -> None:
    outbox = InMemoryOutbox(make_registry())
    uow = with_outbox(InMemoryCounterUnitOfWork, outbox)()

    async with uow:
        uow.counters.add(Counter.open(OpenCounterFactory.build().counter_id))
        await uow.rollback()

    assert outbox.records == []


async def test_an_outbox_row_appears_only_when_the_block_commits() -> None:
    outbox = InMemoryOutbox(make_registry())
    uow = with_outbox(InMemoryCounterUnitOfWork, outbox)()

    async with uow:
        uow.counters.add(Counter.open(OpenCounterFactory.build().counter_id))
        staged = list(outbox.records)
        await uow.commit()

    assert (staged, len(outbox.records)) == ([], 1)


async def test_the_relay_publishes_each_pending_row_once() -> None:
    outbox, bus = make_outbox_and_bus()
    opened = OpenCounterFactory.build()
    await bus.handle(opened)
    await bus.handle(AddFactory.build(counter_id=opened.counter_id))
    broker = InProcessBroker()
    relay = OutboxRelay(outbox, broker)

    first = await relay.drain()
    second = await relay.drain()

    assert (first, second) == (2, 0)
    assert [m["type"] for m in broker.published[EVENTS_STREAM]] == ["CounterOpened", "Added"]
    assert outbox.pending() == []


async def test_a_failed_publish_holds_back_the_rest_of_its_key_only() -> None:
    outbox, bus = make_outbox_and_bus()
    first, second = OpenCounterFactory.build(), OpenCounterFactory.build()
    await bus.handle(first)
    await bus.handle(AddFactory.build(counter_id=first.counter_id))
    await bus.handle(second)
    publisher = RecordingPublisher()
    publisher.fail_ids = {str(outbox.records[0].message_id)}

    outcome = await OutboxRelay(outbox, publisher).publish_pending()

    assert (outcome.published, outcome.failed) == (1, 1)
    assert [m["payload"]["counter_id"] for _, m in publisher.sent] == [str(second.counter_id)]
    assert [(r.attempts, r.last_error is not None) for r in outbox.pending()] == [
        (1, True),
        (0, False),
    ]
