"""The outbox under out-of-order commits, with several relays (issue 5, scenario 8).

Outbox ids are handed out at INSERT, rows become visible at COMMIT, and the
two orders differ: here producers write their outbox rows and then hold
their transactions open, while other producers commit rows with higher ids
and three relays publish those. When the held transactions finally commit,
their rows — by then the lowest ids pending — must still go out: pending
means "not yet published", never "above the last id seen".

What consumers see is checked against ``docs/messaging.md``'s promise:
every committed event is published, and per aggregate in the order of its
commits (a redelivery, had there been one, is ignored as an inbox would).
The messaging tests' sample domain is used — counters whose ``Added``
events carry the running value, so order is visible in the payloads — on a
database of this module's own, since a relay publishes every pending row.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import select

from adapters.database import DatabaseSessionManager
from adapters.outbox import SqlAlchemyOutbox, SqlAlchemyOutboxStore, outbox_table, with_outbox
from adapters.relay import create_relay
from tests.faults.harness import HoldBeforeCommit, LeakCheck
from tests.faults.sample_database import actors, sample_database
from tests.messaging.factories import AddFactory, OpenCounterFactory
from tests.messaging.sample import Counter
from tests.messaging.sample_service import SqlAlchemyCounterUnitOfWork, make_registry, sql_bus
from tests.messaging.support import DEADLINE, RecordingPublisher, wait_until

pytestmark = pytest.mark.integration

RELAYS = 3
PRODUCERS = 4
COUNTERS = 4
ADDS_PER_PRODUCER = 6
HELD = 2
"""Producers that hold their transaction open, outbox rows written, until the end."""

MakeManager = Callable[[str], DatabaseSessionManager]


@pytest.fixture(scope="module")
async def database_url(postgres_admin_dsn: str) -> AsyncIterator[str]:
    async with sample_database(postgres_admin_dsn, "keel_fault_outbox") as url:
        yield url


@pytest.fixture
async def make_manager(
    database_url: str, postgres_admin_dsn: str, leak_check: LeakCheck
) -> AsyncIterator[MakeManager]:
    """``make_manager(actor)``: a session manager of its own, watched by the leak check."""
    async with actors(database_url, postgres_admin_dsn, leak_check) as made:
        yield lambda actor: made.manager(f"outbox-{actor}")


async def hold_a_new_counter(
    manager: DatabaseSessionManager, outbox: SqlAlchemyOutbox, hold: HoldBeforeCommit
) -> None:
    """Open a counter and add to it, in a transaction held open right before its COMMIT."""
    uow = with_outbox(lambda: SqlAlchemyCounterUnitOfWork(manager.session_factory), outbox)()
    uow.hooks.append(hold)
    hold.armed = True
    async with uow:
        counter = Counter.open(uuid4())
        counter.add(1)
        uow.counters.add(counter)
        await uow.commit()


def first_deliveries(sent: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The messages in the order consumers first saw them, redeliveries dropped (the inbox)."""
    seen: set[str] = set()
    first = []
    for _, message in sent:
        if message["message_id"] not in seen:
            seen.add(message["message_id"])
            first.append(message)
    return first


def per_counter(messages: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Each counter's events as consumers saw them: ``opened``, then the running values."""
    seen: dict[str, list[str]] = {}
    for message in messages:
        payload = message["payload"]
        label = "opened" if message["type"] == "CounterOpened" else str(payload["value"])
        seen.setdefault(payload["counter_id"], []).append(label)
    return seen


async def test_rows_committed_late_with_lower_ids_are_published_in_per_aggregate_order(
    make_manager: MakeManager,
) -> None:
    writer, relay_database = make_manager("writer"), make_manager("relay")
    outbox = SqlAlchemyOutbox(make_registry())
    bus = sql_bus(writer, outbox)
    opened = [OpenCounterFactory.build() for _ in range(COUNTERS)]
    for command in opened:
        await bus.handle(command)
    holds = [HoldBeforeCommit() for _ in range(HELD)]
    held = [asyncio.create_task(hold_a_new_counter(writer, outbox, hold)) for hold in holds]
    for hold in holds:
        await asyncio.wait_for(hold.reached.wait(), DEADLINE)

    publisher = RecordingPublisher()
    relays = [create_relay(relay_database.engine, publisher, batch_size=3) for _ in range(RELAYS)]
    relaying = [asyncio.create_task(relay.run()) for relay in relays]

    async def produce() -> None:
        for round_ in range(ADDS_PER_PRODUCER):
            for command in opened[round_ % 2 :: 2]:
                await bus.handle(AddFactory.build(counter_id=command.counter_id))

    try:
        await asyncio.gather(*(produce() for _ in range(PRODUCERS)))
        produced = COUNTERS + PRODUCERS * ADDS_PER_PRODUCER * COUNTERS // 2
        await wait_until(lambda: len(publisher.sent) >= produced, "the committed rows published")
        published_before_release = {message["message_id"] for _, message in publisher.sent}
        for hold in holds:
            hold.release.set()
        await asyncio.wait_for(asyncio.gather(*held), DEADLINE)
        store = SqlAlchemyOutboxStore(writer.engine)

        async def nothing_pending() -> bool:
            return await store.pending_count() == 0

        await wait_until(nothing_pending, "the late rows published")
    finally:
        for task in relaying:
            task.cancel()
        await asyncio.gather(*relaying, return_exceptions=True)

    async with writer.session() as session:
        rows = (await session.execute(select(outbox_table.c.id, outbox_table.c.message_id))).all()
    ids = {str(message_id): row_id for row_id, message_id in rows}
    late = set(ids) - published_before_release
    assert len(late) == 2 * HELD  # each held transaction: CounterOpened and Added
    # The late rows have lower ids than rows published before them.
    assert max(ids[m] for m in late) < max(ids[m] for m in published_before_release)

    consumed = first_deliveries(publisher.sent)
    assert {message["message_id"] for message in consumed} == set(ids)  # none skipped
    adds = ["opened", *(str(value) for value in range(1, PRODUCERS * ADDS_PER_PRODUCER // 2 + 1))]
    seen = per_counter(consumed)
    assert {str(command.counter_id): adds for command in opened}.items() <= seen.items()
    late_counters = set(seen) - {str(command.counter_id) for command in opened}
    assert [seen[counter] for counter in late_counters] == [["opened", "1"]] * HELD
