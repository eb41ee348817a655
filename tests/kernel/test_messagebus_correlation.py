"""The message bus says what caused the work it runs: correlation and causation ids.

A command served outside any request starts its own conversation; inside
one it keeps the entrypoint's context. An event's handlers run caused by
that event, in the conversation of whatever raised it.
"""

from __future__ import annotations

from uuid import uuid4

import pytest

from adapters.repository import InMemoryStore
from domain.aggregate import Event
from service_layer import correlation
from service_layer.correlation import MessageContext
from service_layer.messagebus import HandlerBindingError, MessageBus
from tests.messaging.sample import CounterOpened, OpenCounter
from tests.messaging.sample_service import (
    CounterUnitOfWork,
    InMemoryCounterUnitOfWork,
    open_counter,
)

pytestmark = pytest.mark.unit


class Recorder:
    """Handlers that remember the message context they ran in."""

    def __init__(self) -> None:
        self.commands: list[MessageContext | None] = []
        self.events: list[tuple[Event, MessageContext | None]] = []

    async def open_counter(self, command: OpenCounter, uow: CounterUnitOfWork) -> object:
        self.commands.append(correlation.current())
        return await open_counter(command, uow)

    def opened(self, event: CounterOpened) -> None:
        self.events.append((event, correlation.current()))


def make_bus(recorder: Recorder) -> MessageBus[InMemoryCounterUnitOfWork]:
    store = InMemoryStore()
    bus = MessageBus(lambda: InMemoryCounterUnitOfWork(store))
    bus.register_command(OpenCounter, recorder.open_counter)
    bus.register_event(CounterOpened, recorder.opened)
    return bus


async def test_a_command_served_outside_a_request_starts_its_own_conversation() -> None:
    recorder = Recorder()
    command = OpenCounter(counter_id=uuid4())

    await make_bus(recorder).handle(command)

    assert recorder.commands == [
        MessageContext(correlation_id=command.message_id, causation_id=command.message_id)
    ]
    assert correlation.current() is None


async def test_a_command_served_inside_a_request_keeps_the_requests_context() -> None:
    recorder = Recorder()
    request = MessageContext(correlation_id="request-1", causation_id="request-1")

    with correlation.caused_by(request):
        await make_bus(recorder).handle(OpenCounter(counter_id=uuid4()))

    assert recorder.commands == [request]


async def test_the_events_a_command_commits_are_handled_caused_by_them_in_its_conversation() -> (
    None
):
    recorder = Recorder()
    command = OpenCounter(counter_id=uuid4())

    await make_bus(recorder).handle(command)

    ((event, context),) = recorder.events
    assert context == MessageContext(
        correlation_id=command.message_id, causation_id=str(event.event_id)
    )


async def test_an_event_handled_outside_a_conversation_starts_one_of_its_own() -> None:
    recorder = Recorder()
    event = CounterOpened(counter_id=uuid4())

    await make_bus(recorder).handle(event)

    assert recorder.events == [
        (
            event,
            MessageContext(correlation_id=str(event.event_id), causation_id=str(event.event_id)),
        )
    ]
    assert correlation.current() is None


def test_a_command_handlers_given_name_is_the_one_it_is_known_by() -> None:
    recorder = Recorder()
    bus: MessageBus[InMemoryCounterUnitOfWork] = MessageBus(InMemoryCounterUnitOfWork)
    bus.register_command(OpenCounter, recorder.open_counter, name="counters.open")

    with pytest.raises(HandlerBindingError, match=r"\(counters\.open\)"):
        bus.register_command(OpenCounter, recorder.open_counter)
