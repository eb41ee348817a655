"""The inbox on real PostgreSQL: a redelivered message is applied once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import event, func, select, text

from adapters.database import DatabaseSessionManager
from adapters.inbox import SqlAlchemyInbox, inbox_table
from adapters.outbox import SqlAlchemyOutbox, with_outbox
from service_layer.messagebus import DuplicateMessage, MessageBus
from tests.messaging.factories import AddFactory, OpenCounterFactory, TakeNoteFactory
from tests.messaging.sample import Add, Counter, Note
from tests.messaging.sample_service import (
    CounterUnitOfWork,
    SqlAlchemyCounterUnitOfWork,
    make_registry,
    sql_bus,
)

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


@contextlib.contextmanager
def sql_log(manager: DatabaseSessionManager) -> Iterator[list[str]]:
    """What the engine sends while inside: ``BEGIN``, ``COMMIT``, ``ROLLBACK`` and each
    statement's first words (``INSERT INTO inbox``, ``SELECT msgtest_counters``...)."""
    log: list[str] = []
    engine = manager.engine.sync_engine

    def statement(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        words = sql.split()
        if words[0] == "SELECT":  # the table it reads, not its column list
            words = ["SELECT", words[words.index("FROM") + 1]]
        log.append(" ".join(words[:3]))

    hooks: dict[str, Callable[..., None]] = {
        "begin": lambda _conn: log.append("BEGIN"),
        "commit": lambda _conn: log.append("COMMIT"),
        "rollback": lambda _conn: log.append("ROLLBACK"),
        "before_cursor_execute": statement,
    }
    for name, hook in hooks.items():
        event.listen(engine, name, hook)
    try:
        yield log
    finally:
        for name, hook in hooks.items():
            event.remove(engine, name, hook)


async def test_a_delivered_command_is_one_transaction_that_claims_its_message_first(
    pg: DatabaseSessionManager,
) -> None:
    bus = sql_bus(pg, SqlAlchemyOutbox(make_registry()))
    opened = OpenCounterFactory.build()
    await bus.handle(opened)

    with sql_log(pg) as log:
        await bus.handle(AddFactory.build(counter_id=opened.counter_id), once=True)

    # No separate look-up before the handler: the claim is its transaction's first
    # statement, so a redelivery stops there and a concurrent one waits there.
    assert log == [
        "BEGIN",
        "INSERT INTO inbox",
        "SELECT msgtest_counters",
        "UPDATE msgtest_counters SET",
        "INSERT INTO outbox",
        "COMMIT",
    ]


async def test_a_redelivered_command_stops_at_its_claim(pg: DatabaseSessionManager) -> None:
    bus = sql_bus(pg, SqlAlchemyOutbox(make_registry()))
    opened = OpenCounterFactory.build()
    await bus.handle(opened)
    command = AddFactory.build(counter_id=opened.counter_id)
    await bus.handle(command, once=True)

    with sql_log(pg) as log, pytest.raises(DuplicateMessage):
        await bus.handle(command, once=True)

    assert log == ["BEGIN", "INSERT INTO inbox", "ROLLBACK"]  # the counter was not even locked
    assert (await count(pg, inbox_table), await counter_value(pg, opened.counter_id)) == (1, 1)


async def test_a_delivery_waiting_on_a_concurrent_one_applies_the_message_when_that_one_fails(
    pg: DatabaseSessionManager,
) -> None:
    registry = make_registry()
    holding, fail = asyncio.Event(), asyncio.Event()
    runs = 0

    async def add_failing_first(command: Add, uow: CounterUnitOfWork) -> None:
        nonlocal runs
        runs += 1
        async with uow:
            counter = await uow.counters.get_for_update(command.counter_id)
            assert counter is not None
            counter.add(command.by)
            if runs == 1:  # the first delivery holds its claim, then fails
                holding.set()
                await fail.wait()
                raise RuntimeError("the first delivery failed before its commit")
            await uow.commit()

    factory = with_outbox(
        lambda: SqlAlchemyCounterUnitOfWork(pg.session_factory), SqlAlchemyOutbox(registry)
    )
    bus: MessageBus[CounterUnitOfWork] = MessageBus(factory, inbox=SqlAlchemyInbox())
    bus.register_command(Add, add_failing_first)
    opened = OpenCounterFactory.build()
    async with factory() as uow:
        uow.counters.add(Counter.open(opened.counter_id))
        await uow.commit()
    command = AddFactory.build(counter_id=opened.counter_id)

    first = asyncio.create_task(bus.handle(command, once=True))
    await holding.wait()
    second = asyncio.create_task(bus.handle(command, once=True))
    await wait_for_a_lock_wait(pg)
    fail.set()

    with pytest.raises(RuntimeError):
        await first
    await second
    assert (await count(pg, inbox_table), await counter_value(pg, opened.counter_id)) == (1, 1)


async def counter_value(manager: DatabaseSessionManager, counter_id: object) -> int:
    async with manager.session() as session:
        found = await session.scalar(
            text("SELECT value FROM msgtest_counters WHERE id = :id"), {"id": counter_id}
        )
        return int(found)


async def wait_for_a_lock_wait(manager: DatabaseSessionManager) -> None:
    """Until a session of this database waits for a lock another one holds."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    for _ in range(500):
        async with manager.session() as session:
            if await session.scalar(query):
                return
        await asyncio.sleep(0.01)
    pytest.fail("no delivery ever waited for the other one")


async def test_a_guard_armed_inside_a_running_transaction_claims_at_commit(
    pg: DatabaseSessionManager,
) -> None:
    inbox = SqlAlchemyInbox()
    opened = OpenCounterFactory.build()

    async def add_note(guard_id: str) -> None:
        uow = SqlAlchemyCounterUnitOfWork(pg.session_factory)
        async with uow:
            await uow.counters.get(opened.counter_id)  # the transaction has begun
            inbox.guard(uow, guard_id, "msgtest.note")
            uow.notes.add(Note(counter_id=opened.counter_id, text="once"))
            await uow.commit()

    await add_note("message-1")
    with pytest.raises(DuplicateMessage):
        await add_note("message-1")

    assert (await count(pg, Note), await count(pg, inbox_table)) == (1, 1)
