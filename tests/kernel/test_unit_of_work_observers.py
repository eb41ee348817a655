"""What a unit of work and the retry helper tell the observers attached to them.

The observers (``service_layer.observers``) are how metrics and tracing
watch the kernel; these tests attach a recording one through the public API.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

from adapters.unit_of_work import InMemoryUnitOfWork
from domain.errors import ConcurrencyError
from service_layer import observers
from service_layer.retry import RetryPolicy, retrying
from service_layer.unit_of_work import AbstractUnitOfWork, repository
from tests.kernel.things import Thing
from tests.kernel.things_uow import InMemoryThingUnitOfWork

pytestmark = pytest.mark.unit


class RecordingObserver(observers.UnitOfWorkObserver):
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def entered(self, uow: AbstractUnitOfWork) -> object:
        token = object()
        self.calls.append(("entered", uow, token))
        return token

    def committed(self, uow: AbstractUnitOfWork) -> None:
        self.calls.append(("committed", uow))

    def exited(self, uow: AbstractUnitOfWork, token: object, error: BaseException | None) -> None:
        self.calls.append(("exited", uow, token, error))

    def retrying(self, attempt: int, error: BaseException) -> None:
        self.calls.append(("retrying", attempt, error))


@pytest.fixture
def observer() -> Iterator[RecordingObserver]:
    recording = RecordingObserver()
    observers.attach(recording)
    try:
        yield recording
    finally:
        observers.detach(recording)


class Refused(Exception):
    """What the translating fake's backend raises; it becomes a ConcurrencyError."""


class TranslatingUnitOfWork(InMemoryThingUnitOfWork):
    def translate_error(self, exc: BaseException) -> Exception | None:
        return ConcurrencyError("translated") if isinstance(exc, Refused) else None


async def test_a_block_is_announced_with_its_unit_of_work_and_each_commit(
    observer: RecordingObserver,
) -> None:
    uow = InMemoryThingUnitOfWork()

    async with uow:
        uow.things.add(Thing("a"))
        await uow.commit()
        await uow.commit()

    entered, *committed, exited = observer.calls
    assert entered[:2] == ("entered", uow)
    assert committed == [("committed", uow), ("committed", uow)]
    assert exited == ("exited", uow, entered[2], None)


async def test_the_end_of_a_block_carries_the_error_it_raised(observer: RecordingObserver) -> None:
    uow = InMemoryThingUnitOfWork()
    error = RuntimeError("boom")

    with pytest.raises(RuntimeError):
        async with uow:
            raise error

    assert observer.calls[-1] == ("exited", uow, observer.calls[0][2], error)


async def test_the_end_of_a_block_carries_the_translated_error(
    observer: RecordingObserver,
) -> None:
    uow = TranslatingUnitOfWork()

    with pytest.raises(ConcurrencyError) as raised:
        async with uow:
            raise Refused

    assert observer.calls[-1] == ("exited", uow, observer.calls[0][2], raised.value)


async def test_each_retry_is_announced_with_its_attempt_and_cause(
    observer: RecordingObserver,
) -> None:
    first, second = ConcurrencyError("one"), ConcurrencyError("two")
    failures = [first, second]

    async def operation() -> str:
        if failures:
            raise failures.pop(0)
        return "done"

    assert await retrying(operation, RetryPolicy(attempts=3, base_delay=0, max_delay=0)) == "done"

    assert observer.calls == [("retrying", 1, first), ("retrying", 2, second)]


# -- repository declarations: made inside the tests, so each run declares afresh -------------
# (declared_fields caches per class: a class made at import would be answered from the cache)


async def test_a_declared_field_whitelist_limits_what_the_repository_may_filter_by() -> None:
    class NamedThingUnitOfWork(AbstractUnitOfWork):
        things = repository(Thing, UUID, fields=iter(["name"]))

    class InMemoryNamedThingUnitOfWork(NamedThingUnitOfWork, InMemoryThingUnitOfWork):
        pass

    uow = InMemoryNamedThingUnitOfWork()
    async with uow:
        uow.things.add(Thing("a", 1))
        assert [t.name for t in await uow.things.list(where={"name": "a"})] == ["a"]
        with pytest.raises(ValueError, match="cannot be filtered or ordered by 'count'"):
            await uow.things.list(where={"count": 1})

    assert NamedThingUnitOfWork.things.fields == ("name",)


async def test_without_a_whitelist_every_data_attribute_may_be_filtered_by() -> None:
    class OpenThingUnitOfWork(AbstractUnitOfWork):
        things = repository(Thing, UUID)

    class InMemoryOpenThingUnitOfWork(OpenThingUnitOfWork, InMemoryThingUnitOfWork):
        pass

    uow = InMemoryOpenThingUnitOfWork()
    async with uow:
        uow.things.add(Thing("a", 1))
        assert len(await uow.things.list(where={"count": 1})) == 1

    assert OpenThingUnitOfWork.things.fields is None


async def test_a_repository_reached_without_a_declaration_may_filter_by_every_attribute() -> None:
    class UndeclaredUnitOfWork(InMemoryUnitOfWork):
        pass

    uow = UndeclaredUnitOfWork()
    async with uow:
        things = uow.repository(Thing)
        things.add(Thing("a", 1))
        assert len(await things.list(where={"count": 1, "name": "a"})) == 1
