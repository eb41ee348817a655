"""The message bus's rules that the mutation run found unasserted: what it refuses and says,
which handler names and policies it uses, what it logs and keeps."""

from __future__ import annotations

import functools
import logging
from typing import Any

import pytest

from adapters.repository import InMemoryStore
from domain.aggregate import Event
from domain.errors import ConcurrencyError
from service_layer.messagebus import (
    DuplicateMessage,
    HandlerBindingError,
    MessageBus,
    bind,
    handler_name,
)
from service_layer.retry import RetryPolicy
from service_layer.unit_of_work import AbstractUnitOfWork
from tests.messaging.factories import AddFactory, OpenCounterFactory
from tests.messaging.sample import Add, Counter, CounterOpened, OpenCounter
from tests.messaging.sample_service import (
    CounterUnitOfWork,
    InMemoryCounterUnitOfWork,
    add,
    open_counter,
)

pytestmark = pytest.mark.unit

NO_PAUSE = RetryPolicy(attempts=2, base_delay=0, max_delay=0)


def make_bus(**options: Any) -> MessageBus[InMemoryCounterUnitOfWork]:
    store = InMemoryStore()
    bus = MessageBus(lambda: InMemoryCounterUnitOfWork(store), **options)
    bus.register_command(OpenCounter, open_counter)
    bus.register_command(Add, add)
    return bus


def opened_event() -> CounterOpened:
    return CounterOpened(counter_id=OpenCounterFactory.build().counter_id)


class RecordingInbox:
    """An inbox that says whether it saw a message, and records what it was asked."""

    def __init__(self, *, processed: bool) -> None:
        self.processed = processed
        self.asked: list[tuple[AbstractUnitOfWork, str, str]] = []
        self.guarded: list[tuple[AbstractUnitOfWork, str, str]] = []

    async def already_processed(
        self, uow: AbstractUnitOfWork, message_id: str, handler: str
    ) -> bool:
        self.asked.append((uow, message_id, handler))
        return self.processed

    def guard(self, uow: AbstractUnitOfWork, message_id: str, handler: str) -> None:
        self.guarded.append((uow, message_id, handler))
        if self.processed:
            raise DuplicateMessage(message_id, handler)


async def test_a_bus_without_an_inbox_runs_event_handlers_without_failing_them() -> None:
    bus = make_bus()
    seen: list[Event] = []

    async def remember(event: CounterOpened) -> None:
        seen.append(event)

    bus.register_event(CounterOpened, remember)
    event = opened_event()

    await bus.handle(event)

    assert (seen, list(bus.failures)) == ([event], [])


async def test_handling_once_without_an_inbox_is_refused_saying_why() -> None:
    with pytest.raises(RuntimeError) as raised:
        await make_bus().handle(opened_event(), once=True)

    assert str(raised.value) == "handle(once=True) needs a MessageBus built with an inbox"


async def test_events_a_command_committed_before_it_failed_are_still_dispatched() -> None:
    seen: list[Event] = []

    async def open_then_fail(command: OpenCounter, uow: CounterUnitOfWork) -> None:
        async with uow:
            uow.counters.add(Counter.open(command.counter_id))
            await uow.commit()
        raise LookupError("failed after its commit")

    async def remember(event: CounterOpened) -> None:
        seen.append(event)

    bus: MessageBus[InMemoryCounterUnitOfWork] = MessageBus(InMemoryCounterUnitOfWork)
    bus.register_command(OpenCounter, open_then_fail)
    bus.register_event(CounterOpened, remember)
    command = OpenCounterFactory.build()

    with pytest.raises(LookupError):
        await bus.handle(command)

    assert [event.counter_id for event in seen if isinstance(event, CounterOpened)] == [
        command.counter_id
    ]


async def test_a_redelivered_command_is_refused_naming_the_message_and_handler() -> None:
    inbox = RecordingInbox(processed=True)
    bus = make_bus(inbox=inbox)
    command = AddFactory.build()

    with pytest.raises(DuplicateMessage) as raised:
        await bus.handle(command, once=True)

    handler = f"{add.__module__}.add"
    assert (raised.value.message_id, raised.value.handler) == (command.message_id, handler)
    assert str(raised.value) == f"message {command.message_id} was already processed by {handler}"
    ((uow, message_id, guarded_handler),) = inbox.guarded
    assert isinstance(uow, InMemoryCounterUnitOfWork)
    assert (message_id, guarded_handler) == (command.message_id, handler)


async def test_the_bus_leaves_the_redelivery_check_to_the_guard_in_the_handlers_transaction() -> (
    None
):
    inbox = RecordingInbox(processed=False)
    bus = make_bus(inbox=inbox)
    opened = OpenCounterFactory.build()
    await bus.handle(opened)

    await bus.handle(AddFactory.build(counter_id=opened.counter_id), once=True)

    # No look-up of its own, which would cost a transaction of its own per delivery.
    assert (len(inbox.asked), len(inbox.guarded)) == (0, 1)


async def test_an_event_handled_once_is_guarded_under_its_id_and_handler_name() -> None:
    inbox = RecordingInbox(processed=False)
    bus = make_bus(inbox=inbox)

    async def note(event: CounterOpened) -> None:
        pass

    bus.register_event(CounterOpened, note, name="msgtest.note")
    event = opened_event()

    await bus.handle(event, once=True)

    assert [(message_id, handler) for _, message_id, handler in inbox.guarded] == [
        (str(event.event_id), "msgtest.note")
    ]


async def test_a_skipped_redelivered_event_is_logged_with_its_handler_and_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = make_bus(inbox=RecordingInbox(processed=True))

    async def note(event: CounterOpened) -> None:
        pass

    bus.register_event(CounterOpened, note, name="msgtest.note")
    event = opened_event()

    with caplog.at_level(logging.INFO, logger="service_layer.messagebus"):
        await bus.handle(event, once=True)

    (record,) = caplog.records
    assert record.getMessage() == "event already handled; skipped"
    assert (record.handler, record.message_id) == ("msgtest.note", str(event.event_id))  # type: ignore[attr-defined]


async def test_a_failed_event_handler_is_logged_and_kept_with_its_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = make_bus()

    async def broken(event: CounterOpened) -> None:
        raise RuntimeError("mail server down")

    bus.register_event(CounterOpened, broken, name="msgtest.broken")
    event = opened_event()

    with caplog.at_level(logging.ERROR, logger="service_layer.messagebus"):
        await bus.handle(event)

    (record,) = caplog.records
    assert record.getMessage() == (
        "event handler failed; the command and the other handlers are unaffected"
    )
    assert (record.handler, record.event) == ("msgtest.broken", "CounterOpened")  # type: ignore[attr-defined]
    (failure,) = bus.failures
    assert (failure.handler, failure.message) == ("msgtest.broken", event)


async def test_event_handlers_are_retried_under_the_buses_own_policy() -> None:
    bus = make_bus(event_retry=NO_PAUSE)
    calls = 0

    async def always_losing(event: CounterOpened) -> None:
        nonlocal calls
        calls += 1
        raise ConcurrencyError("lost again")

    bus.register_event(CounterOpened, always_losing)

    await bus.handle(opened_event())

    assert calls == NO_PAUSE.attempts


def test_a_bus_keeps_the_last_100_failures_and_retries_events_by_default_policy() -> None:
    bus = make_bus()

    assert (bus.failures.maxlen, bus.event_retry) == (100, RetryPolicy())


def test_a_bus_keeps_the_retry_policy_it_is_given() -> None:
    assert make_bus(event_retry=NO_PAUSE).event_retry is NO_PAUSE


def test_a_second_command_handler_is_refused_naming_the_first() -> None:
    bus = make_bus()

    with pytest.raises(HandlerBindingError) as raised:
        bus.register_command(OpenCounter, open_counter)

    assert str(raised.value) == (
        f"OpenCounter already has a handler ({open_counter.__module__}.open_counter); "
        "a command has exactly one"
    )


def test_a_name_for_several_event_handlers_at_once_is_refused() -> None:
    async def one(event: Event) -> None: ...

    with pytest.raises(ValueError, match=r"^name= applies to exactly one handler$"):
        make_bus().register_event(Event, one, one, name="both")


def test_an_event_handler_is_registered_under_the_name_given() -> None:
    bus = make_bus()

    async def note(event: CounterOpened) -> None: ...

    bus.register_event(CounterOpened, note, name="msgtest.note")

    assert [handler.name for handler in bus.handlers_for(opened_event())] == ["msgtest.note"]


def test_a_handler_without_a_message_parameter_is_refused_naming_it() -> None:
    def no_message() -> None: ...

    with pytest.raises(HandlerBindingError) as raised:
        bind(no_message, {}, name="msgtest.empty")

    assert str(raised.value) == "handler msgtest.empty must take the message as its first parameter"


def test_a_missing_dependency_is_refused_listing_what_the_bus_can_supply() -> None:
    async def needs_mailer(event: Event, mailer: object) -> None: ...

    with pytest.raises(HandlerBindingError) as raised:
        bind(needs_mailer, {"clock": object()}, name="msgtest.mail")

    assert str(raised.value) == (
        "handler msgtest.mail needs 'mailer', which the bus was not given "
        "(it can supply: clock, uow)"
    )


def test_dependencies_after_a_star_parameter_are_still_resolved() -> None:
    clock = object()

    async def stamp(
        event: Event, *extra: object, clock: object, uow: AbstractUnitOfWork
    ) -> None: ...

    bound = bind(stamp, {"clock": clock})

    assert (dict(bound.dependencies), bound.wants_uow) == ({"clock": clock}, True)


def test_a_handler_is_named_by_its_module_and_qualified_name() -> None:
    assert handler_name(open_counter) == f"{open_counter.__module__}.open_counter"


def test_a_callable_object_is_named_by_its_type() -> None:
    assert handler_name(functools.partial(open_counter)) == "functools.partial"


class _Moduleless:
    __module__ = None  # type: ignore[assignment]

    def __call__(self, event: Event) -> None: ...


def test_a_callable_without_a_module_is_named_with_a_question_mark() -> None:
    assert handler_name(_Moduleless()) == "?._Moduleless"
