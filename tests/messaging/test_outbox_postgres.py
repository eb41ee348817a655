"""The outbox and the relay on real PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import func, select

from adapters.database import DatabaseSessionManager
from adapters.outbox import SqlAlchemyOutbox, SqlAlchemyOutboxStore, outbox_table
from adapters.relay import OutboxRelay, create_relay
from tests.messaging.factories import AddFactory, OpenCounterFactory
from tests.messaging.sample import Counter, CounterOpened
from tests.messaging.sample_service import SqlAlchemyCounterUnitOfWork, make_registry, sql_bus
from tests.messaging.support import RecordingPublisher, wait_until

pytestmark = pytest.mark.integration


async def outbox_ids(manager: DatabaseSessionManager) -> list[str]:
    async with manager.session() as session:
        rows = await session.scalars(select(outbox_table.c.message_id).order_by(outbox_table.c.id))
        return [str(message_id) for message_id in rows]


async def open_and_add(
    manager: DatabaseSessionManager, outbox: SqlAlchemyOutbox, *, counters: int, adds: int
) -> None:
    """Open counters, then add to them round-robin, one transaction per add."""
    bus = sql_bus(manager, outbox)
    opened = [OpenCounterFactory.build() for _ in range(counters)]
    for command in opened:
        await bus.handle(command)
    for _ in range(adds):
        for command in opened:
            await bus.handle(AddFactory.build(counter_id=command.counter_id))


async def test_a_rolled_back_transaction_writes_and_publishes_nothing(
    pg: DatabaseSessionManager,
) -> None:
    outbox = SqlAlchemyOutbox(make_registry())
    uow = SqlAlchemyCounterUnitOfWork(pg.session_factory)
    uow.hooks.append(outbox)
    publisher = RecordingPublisher()

    with contextlib.suppress(LookupError):
        async with uow:
            uow.counters.add(Counter.open(uuid4()))
            await uow.session.flush()
            raise LookupError("the caller gave up")

    assert await outbox_ids(pg) == []
    assert await OutboxRelay(SqlAlchemyOutboxStore(pg.engine), publisher).drain() == 0
    assert publisher.sent == []


async def test_the_outbox_row_is_written_by_the_changes_own_transaction(
    pg: DatabaseSessionManager,
) -> None:
    outbox = SqlAlchemyOutbox(make_registry())
    command = OpenCounterFactory.build()

    await sql_bus(pg, outbox).handle(command)

    async with pg.session() as session:
        counters = await session.scalar(select(func.count()).select_from(Counter))
    assert (counters, len(await outbox_ids(pg))) == (1, 1)


async def test_every_event_of_a_transaction_gets_a_row_in_the_order_raised(
    pg: DatabaseSessionManager,
) -> None:
    uow = SqlAlchemyCounterUnitOfWork(pg.session_factory)
    uow.hooks.append(SqlAlchemyOutbox(make_registry()))
    first, second = Counter.open(uuid4()), Counter.open(uuid4())
    first.add(2)
    raised = [str(event.event_id) for event in (*first.events, *second.events)]

    async with uow:
        uow.counters.add(first)
        uow.counters.add(second)
        await uow.commit()

    assert await outbox_ids(pg) == raised


async def test_a_commit_whose_flush_takes_the_orms_path_still_writes_its_outbox_rows(
    pg: DatabaseSessionManager,
) -> None:
    uow = SqlAlchemyCounterUnitOfWork(pg.session_factory)
    uow.hooks.append(SqlAlchemyOutbox(make_registry()))
    old, new = Counter(), Counter.open(uuid4())
    async with uow:
        uow.counters.add(old)
        await uow.commit()

    async with uow:
        # A delete in the flush: the ORM writes it, and the outbox row goes after it.
        stored = await uow.counters.get(old.id)
        assert stored is not None
        await uow.counters.remove(stored)
        uow.counters.add(new)
        await uow.commit()

    async with uow:
        left = [counter.id for counter in await uow.counters.list()]
    assert (left, await outbox_ids(pg)) == ([new.id], [str(new.events[0].event_id)])


async def test_the_relay_publishes_committed_rows_exactly_once(
    pg: DatabaseSessionManager,
) -> None:
    await open_and_add(pg, SqlAlchemyOutbox(make_registry()), counters=2, adds=3)
    store = SqlAlchemyOutboxStore(pg.engine)
    publisher = RecordingPublisher()
    relay = OutboxRelay(store, publisher, batch_size=5)

    assert await relay.drain() == 8
    assert await relay.drain() == 0

    assert publisher.ids() == await outbox_ids(pg)
    assert await store.pending_count() == 0


class CancelsItsPassAfter(RecordingPublisher):
    """Publishes, then cancels the relay pass before it can mark anything: a crash."""

    def __init__(self, count: int) -> None:
        super().__init__()
        self.count = count
        self.task: asyncio.Task[Any] | None = None

    async def publish(
        self, stream: str, message: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> None:
        await super().publish(stream, message, headers)
        if len(self.sent) == self.count and self.task is not None:
            self.task.cancel()
            await asyncio.sleep(0)


async def test_a_relay_stopped_between_publish_and_mark_publishes_again(
    pg: DatabaseSessionManager,
) -> None:
    await open_and_add(pg, SqlAlchemyOutbox(make_registry()), counters=1, adds=3)
    store = SqlAlchemyOutboxStore(pg.engine)
    crashing = CancelsItsPassAfter(2)
    crashing.task = asyncio.create_task(OutboxRelay(store, crashing).publish_pending())
    with pytest.raises(asyncio.CancelledError):
        await crashing.task
    assert await store.pending_count() == 4  # nothing half-marked

    survivor = RecordingPublisher()
    await OutboxRelay(store, survivor).drain()

    expected = await outbox_ids(pg)
    assert crashing.ids() == expected[:2]
    assert survivor.ids() == expected  # at least once: the first two went out twice
    assert await store.pending_count() == 0


async def test_two_relays_side_by_side_publish_everything_once_in_per_key_order(
    pg: DatabaseSessionManager,
) -> None:
    await open_and_add(pg, SqlAlchemyOutbox(make_registry()), counters=4, adds=6)
    publisher = RecordingPublisher()
    relays = [create_relay(pg.engine, publisher, batch_size=3) for _ in range(2)]
    tasks = [asyncio.create_task(relay.run()) for relay in relays]
    expected = await outbox_ids(pg)
    try:
        await wait_until(lambda: len(publisher.sent) >= len(expected), "every event published")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    assert sorted(publisher.ids()) == sorted(expected)
    by_counter: dict[str, list[int]] = {}
    for _, message in publisher.sent:
        if message["type"] == "Added":
            payload = message["payload"]
            by_counter.setdefault(payload["counter_id"], []).append(payload["value"])
    assert sorted(len(values) for values in by_counter.values()) == [6, 6, 6, 6]
    assert all(values == [1, 2, 3, 4, 5, 6] for values in by_counter.values())


async def test_a_transaction_that_commits_a_lower_id_late_is_still_published(
    pg: DatabaseSessionManager,
) -> None:
    outbox = SqlAlchemyOutbox(make_registry())
    relay = OutboxRelay(SqlAlchemyOutboxStore(pg.engine), publisher := RecordingPublisher())
    late = SqlAlchemyCounterUnitOfWork(pg.session_factory)
    late_event = CounterOpened(counter_id=uuid4())

    async with late:
        await outbox.put(late, late_event)  # takes its id now, commits last
        await sql_bus(pg, outbox).handle(OpenCounterFactory.build())
        published_while_open = await relay.drain()
        await late.commit()
    published_after = await relay.drain()

    assert (published_while_open, published_after) == (1, 1)
    assert (await outbox_ids(pg))[0] == str(late_event.event_id)  # the lower id
    assert publisher.ids()[-1] == str(late_event.event_id)


async def test_a_keys_row_committed_late_below_the_claim_floor_still_goes_out_first(
    pg: DatabaseSessionManager,
) -> None:
    outbox = SqlAlchemyOutbox(make_registry())
    relay = OutboxRelay(SqlAlchemyOutboxStore(pg.engine), publisher := RecordingPublisher())
    key = f"Counter:{uuid4()}"
    first, second = CounterOpened(counter_id=uuid4()), CounterOpened(counter_id=uuid4())

    late = SqlAlchemyCounterUnitOfWork(pg.session_factory)
    async with late:
        await outbox.put(late, first, key=key)  # the lower id, committed last
        await sql_bus(pg, outbox).handle(OpenCounterFactory.build())  # another key, above it
        await relay.publish_pending()  # one pass: its claims now start above `first`
        await late.commit()
    after = SqlAlchemyCounterUnitOfWork(pg.session_factory)
    async with after:
        await outbox.put(after, second, key=key)
        await after.commit()
    await relay.publish_pending()
    await relay.drain()

    mine = {str(first.event_id), str(second.event_id)}
    assert [ident for ident in publisher.ids() if ident in mine] == [
        str(first.event_id),
        str(second.event_id),
    ]
