"""The whole path: broker → consumer → bus → unit of work + inbox + outbox → relay → broker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from sqlalchemy import select

from adapters.brokers import InProcessBroker
from adapters.brokers.consumer import deliver_to_bus
from adapters.brokers.redis_streams import RedisStreamsBroker
from adapters.database import DatabaseSessionManager
from adapters.inbox import InMemoryInbox
from adapters.outbox import InMemoryOutbox, SqlAlchemyOutbox, SqlAlchemyOutboxStore, with_outbox
from adapters.relay import OutboxRelay, create_relay
from adapters.repository import InMemoryStore
from adapters.serialization import encode
from domain.errors import DomainError
from domain.messages import Command
from service_layer.messagebus import MessageBus
from tests.messaging.factories import AddFactory, OpenCounterFactory
from tests.messaging.sample import CommandRefused
from tests.messaging.sample_orm import counters
from tests.messaging.sample_service import (
    COMMANDS_STREAM,
    EVENTS_STREAM,
    InMemoryCounterUnitOfWork,
    make_registry,
    register_handlers,
    sql_bus,
)
from tests.messaging.support import stream_entries, wait_until


@pytest.fixture
async def redis_broker(redis_url: str, stream_prefix: str) -> AsyncIterator[RedisStreamsBroker]:
    broker = RedisStreamsBroker(redis_url, prefix=stream_prefix, claim_idle_ms=200, poll_ms=20)
    try:
        yield broker
    finally:
        await broker.stop()


@pytest.mark.integration
async def test_a_command_sent_twice_over_redis_is_applied_once_and_announced_once(
    pg: DatabaseSessionManager,
    redis_broker: RedisStreamsBroker,
    redis_client: aioredis.Redis,
    stream_prefix: str,
) -> None:
    registry = make_registry()
    outbox = SqlAlchemyOutbox(registry)
    redis_broker.subscribe(
        COMMANDS_STREAM, deliver_to_bus(sql_bus(pg, outbox), registry), group="g"
    )
    relay = create_relay(pg.engine, redis_broker, doorbell=outbox.doorbell)
    await redis_broker.start()
    relaying = asyncio.create_task(relay.run())
    opened = OpenCounterFactory.build()
    added = AddFactory.build(counter_id=opened.counter_id, by=3)
    try:
        for command in (opened, added, added):  # the second `added` is a redelivery
            text = encode(registry.to_message(command))
            await redis_client.xadd(stream_prefix + COMMANDS_STREAM, {"data": text})
        events_stream = stream_prefix + EVENTS_STREAM
        store = SqlAlchemyOutboxStore(pg.engine)

        async def settled() -> bool:
            # Every command read and acked, nothing left in the outbox.
            [group] = await redis_client.xinfo_groups(stream_prefix + COMMANDS_STREAM)
            return (
                group["lag"] == 0
                and group["pending"] == 0
                and await store.pending_count() == 0
                and await redis_client.xlen(events_stream) >= 2
            )

        await wait_until(settled, "every command handled and its events published")
    finally:
        relaying.cancel()
        await asyncio.gather(relaying, return_exceptions=True)

    events = await stream_entries(redis_client, stream_prefix + EVENTS_STREAM)
    types = [type(registry.from_message(fields["data"])).__name__ for fields in events]
    assert types == ["CounterOpened", "Added"]
    async with pg.session() as session:
        assert await session.scalar(select(counters.c.value)) == 3


@pytest.mark.unit
async def test_a_refused_command_is_announced_once_and_acknowledged_not_dead_lettered() -> None:
    registry = make_registry()
    outbox = InMemoryOutbox(registry)
    inbox = InMemoryInbox()
    store = InMemoryStore()
    uow_factory = with_outbox(lambda: InMemoryCounterUnitOfWork(store), outbox)
    bus = MessageBus(uow_factory, inbox=inbox)
    register_handlers(bus)

    async def announce(command: Command, error: DomainError) -> None:
        uow = uow_factory()
        inbox.guard(uow, command.message_id, "rejected")  # announce a refusal once
        async with uow:
            refused = CommandRefused(command_message_id=command.message_id, code=error.code)
            await outbox.put(uow, refused, key=command.message_id)
            await uow.commit()

    broker = InProcessBroker(redelivery_delay=0.001)
    broker.subscribe(
        COMMANDS_STREAM, deliver_to_bus(bus, registry, on_rejected=announce), group="g"
    )
    opened = OpenCounterFactory.build()
    negative = AddFactory.build(counter_id=opened.counter_id, by=-5)
    async with broker:
        for command in (opened, negative, negative):  # the refusal is delivered twice
            await broker.publish(COMMANDS_STREAM, registry.to_message(command))
        await broker.settled()
        await OutboxRelay(outbox, broker).drain()

    published = broker.published[EVENTS_STREAM]
    assert [m["type"] for m in published] == ["CounterOpened", "CommandRefused"]
    assert published[1]["payload"] == {
        "command_message_id": negative.message_id,
        "code": "negative_amount",
    }
    assert dict(broker.dead) == {}
