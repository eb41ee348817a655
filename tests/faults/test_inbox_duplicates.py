"""The inbox under duplicate and failed deliveries, on real Redis (issue 5, scenario 9).

- The same message reaches two consumers of one group at once (the relay
  published it twice, as at-least-once allows): both run the handler, both
  try to commit, and only one effect is kept; both entries are acknowledged.
- A handler raises: before its commit (nothing kept) or after it (the effect
  is kept, the acknowledgement was never sent — a crash in between). Either
  way the entry stays unacknowledged, comes back, and the effect exists
  exactly once afterwards.

The messaging tests' sample domain is used: a ``TakeNote`` command appends a
note, and taking it twice would make two rows, so only the inbox can stop a
duplicate. Each consumer has a connection pool of its own, as a separate
process would, and every pool is leak-checked.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from uuid import UUID

import pytest
from sqlalchemy import func, select

from adapters.brokers import Delivery, DeliveryHandler
from adapters.brokers.consumer import deliver_to_bus
from adapters.brokers.redis_streams import RedisStreamsBroker
from adapters.database import DatabaseSessionManager
from adapters.inbox import SqlAlchemyInbox, inbox_table
from adapters.outbox import SqlAlchemyOutbox, with_outbox
from service_layer.messagebus import MessageBus
from tests.faults.harness import LeakCheck
from tests.faults.redis_server import RedisStreams, redis_streams
from tests.faults.sample_database import actors, sample_database
from tests.messaging.factories import TakeNoteFactory
from tests.messaging.sample import Note, TakeNote
from tests.messaging.sample_service import (
    COMMANDS_STREAM,
    CounterUnitOfWork,
    SqlAlchemyCounterUnitOfWork,
    make_registry,
    sql_bus,
)
from tests.messaging.support import wait_until

pytestmark = pytest.mark.integration

GROUP = "notes"
MakeManager = Callable[[str], DatabaseSessionManager]


@pytest.fixture(scope="module")
async def database_url(postgres_admin_dsn: str) -> AsyncIterator[str]:
    async with sample_database(postgres_admin_dsn, "keel_fault_inbox") as url:
        yield url


@pytest.fixture
async def make_manager(
    database_url: str, postgres_admin_dsn: str, leak_check: LeakCheck
) -> AsyncIterator[MakeManager]:
    """``make_manager(actor)``: a session manager of its own, watched by the leak check."""
    async with actors(database_url, postgres_admin_dsn, leak_check) as made:
        yield lambda actor: made.manager(f"inbox-{actor}")


@pytest.fixture
async def redis() -> AsyncIterator[RedisStreams]:
    async with redis_streams() as streams:
        yield streams


@pytest.fixture
async def brokers(redis: RedisStreams) -> AsyncIterator[Callable[..., RedisStreamsBroker]]:
    """``brokers(claim_idle_ms=...)``: a consumer of the group, with a Redis client of its own."""
    made: list[RedisStreamsBroker] = []

    def make(claim_idle_ms: int = 100) -> RedisStreamsBroker:
        broker = RedisStreamsBroker(
            redis.url, prefix=redis.prefix, claim_idle_ms=claim_idle_ms, poll_ms=20
        )
        made.append(broker)
        return broker

    try:
        yield make
    finally:
        for broker in made:
            await broker.stop()


async def count(manager: DatabaseSessionManager, table: object) -> int:
    async with manager.session() as session:
        found = await session.scalar(select(func.count()).select_from(table))  # type: ignore[arg-type]
        return int(found or 0)


class Attempts:
    """Wraps a delivery handler and keeps the ``attempt`` of every delivery it saw."""

    def __init__(self, handler: DeliveryHandler) -> None:
        self.handler = handler
        self.seen: list[int] = []

    async def __call__(self, delivery: Delivery) -> None:
        self.seen.append(delivery.attempt)
        await self.handler(delivery)


async def test_one_message_taken_by_two_consumers_at_once_is_applied_once(
    make_manager: MakeManager,
    brokers: Callable[..., RedisStreamsBroker],
    redis: RedisStreams,
) -> None:
    registry = make_registry()
    # Both deliveries do their work and then meet here, before either commits.
    gate = asyncio.Barrier(2)
    # No reclaim while the first waits at the gate: exactly these two deliveries meet.
    first, second = brokers(claim_idle_ms=60_000), brokers(claim_idle_ms=60_000)
    for broker, actor in ((first, "first"), (second, "second")):
        bus = sql_bus(make_manager(actor), SqlAlchemyOutbox(registry), gate=gate)
        broker.subscribe(COMMANDS_STREAM, deliver_to_bus(bus, registry), group=GROUP)
    message = registry.to_message(TakeNoteFactory.build())
    await first.start()
    await first.publish(COMMANDS_STREAM, message)

    async def taken(n: int) -> bool:
        return await redis.pending(COMMANDS_STREAM, GROUP) == n

    await wait_until(lambda: taken(1), "the first consumer holding the message")
    await second.start()  # the first is busy: only the second can take the duplicate
    await first.publish(COMMANDS_STREAM, message)
    await wait_until(lambda: taken(0), "both deliveries acknowledged")

    manager = make_manager("check")
    assert (await count(manager, Note), await count(manager, inbox_table)) == (1, 1)
    assert await redis.length(COMMANDS_STREAM + ".dead") == 0


class Crash:
    """Makes the first run of the handler raise at ``where``: before or after its commit."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.crashed = False

    def at(self, where: str) -> None:
        if where == self.where and not self.crashed:
            self.crashed = True
            raise RuntimeError(f"the handler crashed {where}")


async def take_note_and_crash(command: TakeNote, uow: CounterUnitOfWork, crash: Crash) -> UUID:
    async with uow:
        note = Note(counter_id=command.counter_id, text=command.text)
        uow.notes.add(note)
        crash.at("before commit")
        await uow.commit()
    crash.at("after commit")
    return note.id


@pytest.mark.parametrize("where", ["before commit", "after commit"])
async def test_a_message_whose_handler_raised_comes_back_and_is_applied_once(
    where: str,
    make_manager: MakeManager,
    brokers: Callable[..., RedisStreamsBroker],
    redis: RedisStreams,
) -> None:
    registry = make_registry()
    manager = make_manager("consumer")
    factory = with_outbox(
        lambda: SqlAlchemyCounterUnitOfWork(manager.session_factory), SqlAlchemyOutbox(registry)
    )
    bus: MessageBus[CounterUnitOfWork] = MessageBus(
        factory, inbox=SqlAlchemyInbox(), dependencies={"crash": Crash(where)}
    )
    bus.register_command(TakeNote, take_note_and_crash)
    consumer = brokers()
    attempts = Attempts(deliver_to_bus(bus, registry))
    consumer.subscribe(COMMANDS_STREAM, attempts, group=GROUP)
    await consumer.start()

    await consumer.publish(COMMANDS_STREAM, registry.to_message(TakeNoteFactory.build()))

    async def acknowledged() -> bool:
        return bool(attempts.seen) and await redis.pending(COMMANDS_STREAM, GROUP) == 0

    await wait_until(acknowledged, "the redelivery acknowledged")
    assert attempts.seen == [1, 2]  # unacknowledged after the crash, so delivered again
    assert (await count(manager, Note), await count(manager, inbox_table)) == (1, 1)
