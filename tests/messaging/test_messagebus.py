"""The message bus on the in-memory unit of work."""

from __future__ import annotations

import logging
from uuid import UUID

import pytest

from adapters.inbox import InMemoryInbox
from adapters.repository import InMemoryStore
from domain.aggregate import Event
from service_layer.messagebus import (
    DuplicateMessage,
    HandlerBindingError,
    MessageBus,
    UnknownMessage,
)
from tests.messaging.factories import AddFactory, OpenCounterFactory
from tests.messaging.sample import Add, Added, Counter, CounterOpened, NegativeAmount, OpenCounter
from tests.messaging.sample_service import (
    CounterUnitOfWork,
    InMemoryCounterUnitOfWork,
    add,
    open_counter,
)

pytestmark = pytest.mark.unit


def make_bus(**dependencies: object) -> MessageBus[InMemoryCounterUnitOfWork]:
    store = InMemoryStore()
    bus = MessageBus(
        lambda: InMemoryCounterUnitOfWork(store),
        dependencies=dependencies,
        inbox=InMemoryInbox(),
    )
    bus.register_command(OpenCounter, open_counter)
    bus.register_command(Add, add)
    return bus


async def test_a_command_returns_its_handlers_result() -> None:
    bus = make_bus()
    command = OpenCounterFactory.build()

    assert await bus.handle(command) == command.counter_id


async def test_a_command_without_a_handler_is_refused() -> None:
    bus: MessageBus[InMemoryCounterUnitOfWork] = MessageBus(InMemoryCounterUnitOfWork)

    with pytest.raises(UnknownMessage, match="OpenCounter"):
        await bus.handle(OpenCounterFactory.build())


async def test_a_second_handler_for_a_command_is_refused() -> None:
    bus = make_bus()

    with pytest.raises(HandlerBindingError, match="exactly one"):
        bus.register_command(OpenCounter, open_counter)


async def test_events_are_handled_after_the_command_committed() -> None:
    bus = make_bus()
    seen: list[tuple[Added, int]] = []

    async def remember(event: Added, uow: CounterUnitOfWork) -> None:
        async with uow:
            counter = await uow.counters.get(event.counter_id)
            assert counter is not None
            seen.append((event, counter.value))  # the committed state is visible

    bus.register_event(Added, remember)
    opened = OpenCounterFactory.build()
    await bus.handle(opened)

    await bus.handle(AddFactory.build(counter_id=opened.counter_id, by=5))

    assert [(event.value, value) for event, value in seen] == [(5, 5)]


async def test_events_of_a_refused_command_are_never_handled() -> None:
    bus = make_bus()
    seen: list[Event] = []

    async def remember(event: Event) -> None:
        seen.append(event)

    bus.register_event(Event, remember)
    opened = OpenCounterFactory.build()
    await bus.handle(opened)
    seen.clear()

    with pytest.raises(NegativeAmount):
        await bus.handle(AddFactory.build(counter_id=opened.counter_id, by=-1))

    assert seen == []


async def test_events_raised_but_not_committed_are_never_handled() -> None:
    seen: list[Event] = []

    async def open_without_commit(command: OpenCounter, uow: CounterUnitOfWork) -> None:
        async with uow:
            uow.counters.add(Counter.open(command.counter_id))

    async def remember(event: Event) -> None:
        seen.append(event)

    bus = MessageBus(InMemoryCounterUnitOfWork)
    bus.register_command(OpenCounter, open_without_commit)
    bus.register_event(Event, remember)

    await bus.handle(OpenCounterFactory.build())

    assert seen == []


async def test_a_failing_event_handler_neither_undoes_the_command_nor_stops_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = make_bus()
    reached: list[str] = []

    async def broken(event: CounterOpened) -> None:
        raise RuntimeError("mail server down")

    async def fine(event: CounterOpened) -> None:
        reached.append("fine")

    bus.register_event(CounterOpened, broken, fine)
    command = OpenCounterFactory.build()

    with caplog.at_level(logging.ERROR, logger="service_layer.messagebus"):
        result = await bus.handle(command)

    assert result == command.counter_id
    assert reached == ["fine"]
    assert [(f.handler.rsplit(".", 1)[-1], str(f.error)) for f in bus.failures] == [
        ("broken", "mail server down")
    ]
    assert "event handler failed" in caplog.text


async def test_events_committed_by_an_event_handler_are_handled_in_turn() -> None:
    bus = make_bus()
    values: list[int] = []

    async def add_one_on_open(event: CounterOpened, uow: CounterUnitOfWork) -> None:
        await add(AddFactory.build(counter_id=event.counter_id, by=1), uow)

    async def remember(event: Added) -> None:
        values.append(event.value)

    bus.register_event(CounterOpened, add_one_on_open)
    bus.register_event(Added, remember)

    await bus.handle(OpenCounterFactory.build())

    assert values == [1]


async def test_dependencies_are_injected_by_parameter_name() -> None:
    clock_readings: list[str] = []
    bus = make_bus(clock=lambda: "noon")

    async def stamp(event: CounterOpened, clock: object) -> None:
        assert callable(clock)
        clock_readings.append(clock())

    bus.register_event(CounterOpened, stamp)
    await bus.handle(OpenCounterFactory.build())

    assert clock_readings == ["noon"]


async def test_a_handler_asking_for_an_unknown_dependency_is_refused_at_registration() -> None:
    bus = make_bus()

    async def needs_mailer(event: CounterOpened, mailer: object) -> None:
        pass

    with pytest.raises(HandlerBindingError, match="needs 'mailer'"):
        bus.register_event(CounterOpened, needs_mailer)


async def test_a_redelivered_command_is_applied_once() -> None:
    bus = make_bus()
    opened = OpenCounterFactory.build()
    await bus.handle(opened)
    command = AddFactory.build(counter_id=opened.counter_id, by=2)
    assert await bus.handle(command, once=True) == 2

    with pytest.raises(DuplicateMessage):
        await bus.handle(command, once=True)

    assert await bus.handle(AddFactory.build(counter_id=opened.counter_id, by=0)) == 2


async def test_a_command_refused_by_a_rule_is_not_recorded_as_processed() -> None:
    bus = make_bus()
    opened = OpenCounterFactory.build()
    await bus.handle(opened)
    command = AddFactory.build(counter_id=opened.counter_id, by=-1)
    with pytest.raises(NegativeAmount):
        await bus.handle(command, once=True)

    with pytest.raises(NegativeAmount):
        await bus.handle(command, once=True)


async def test_a_redelivered_event_reaches_each_handler_once() -> None:
    bus = make_bus()
    counted: list[UUID] = []

    async def count(event: CounterOpened, uow: CounterUnitOfWork) -> None:
        async with uow:
            counted.append(event.counter_id)
            await uow.commit()

    bus.register_event(CounterOpened, count)
    event = CounterOpened(counter_id=OpenCounterFactory.build().counter_id)

    await bus.handle(event, once=True)
    await bus.handle(event, once=True)

    assert counted == [event.counter_id]
