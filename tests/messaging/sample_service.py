"""The sample domain's unit of work, handlers and message registry, wired like an application."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import tests.messaging.sample_orm  # noqa: F401 - maps the sample before any SQL unit of work runs
from adapters.database import DatabaseSessionManager
from adapters.inbox import SqlAlchemyInbox
from adapters.outbox import SqlAlchemyOutbox, with_outbox
from adapters.serialization import MessageRegistry
from adapters.unit_of_work import InMemoryUnitOfWork, SqlAlchemyUnitOfWork
from domain.errors import NotFound
from service_layer.messagebus import MessageBus
from service_layer.retry import RetryPolicy, retrying
from service_layer.unit_of_work import AbstractUnitOfWork, repository
from tests.messaging.sample import (
    Add,
    Added,
    CommandRefused,
    Counter,
    CounterOpened,
    Note,
    NoteTaken,
    OpenCounter,
    TakeNote,
)

EVENTS_STREAM = "msgtest.events"
COMMANDS_STREAM = "msgtest.commands"


class CounterUnitOfWork(AbstractUnitOfWork):
    counters = repository(Counter, UUID)
    notes = repository(Note, UUID)


class SqlAlchemyCounterUnitOfWork(CounterUnitOfWork, SqlAlchemyUnitOfWork):
    pass


class InMemoryCounterUnitOfWork(CounterUnitOfWork, InMemoryUnitOfWork):
    pass


def make_registry() -> MessageRegistry:
    registry = MessageRegistry()
    for command in (OpenCounter, Add, TakeNote):
        registry.register(command)
    registry.register(CounterOpened, stream=EVENTS_STREAM)
    registry.register(Added, stream=EVENTS_STREAM)
    registry.register(CommandRefused, stream=EVENTS_STREAM)
    registry.register(NoteTaken)
    return registry


async def open_counter(command: OpenCounter, uow: CounterUnitOfWork) -> UUID:
    async with uow:
        counter = Counter.open(command.counter_id)
        uow.counters.add(counter)
        await uow.commit()
    return counter.id


async def add(command: Add, uow: CounterUnitOfWork) -> int:
    async def attempt() -> int:
        async with uow:
            counter = await uow.counters.get_for_update(command.counter_id)
            if counter is None:
                raise NotFound(f"counter {command.counter_id} not found")
            counter.add(command.by)
            await uow.commit()
            return counter.value

    return await retrying(attempt, RetryPolicy(attempts=10))


async def take_note(
    command: TakeNote, uow: CounterUnitOfWork, gate: asyncio.Barrier | None = None
) -> UUID:
    """``gate`` lets a test hold two deliveries just before their commits."""
    async with uow:
        note = Note(counter_id=command.counter_id, text=command.text)
        uow.notes.add(note)
        if gate is not None:
            await gate.wait()
        await uow.commit()
    return note.id


def register_handlers(bus: MessageBus[Any]) -> None:
    """The composition root's routing of the sample commands."""
    bus.register_command(OpenCounter, open_counter)
    bus.register_command(Add, add)
    bus.register_command(TakeNote, take_note)


def sql_bus(
    manager: DatabaseSessionManager, outbox: SqlAlchemyOutbox, **dependencies: Any
) -> MessageBus[SqlAlchemyCounterUnitOfWork]:
    """A bus over PostgreSQL or SQLite whose units of work write ``outbox``."""
    factory = with_outbox(lambda: SqlAlchemyCounterUnitOfWork(manager.session_factory), outbox)
    bus = MessageBus(factory, dependencies=dependencies, inbox=SqlAlchemyInbox())
    register_handlers(bus)
    return bus
