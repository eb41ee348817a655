"""The kernel's handling of a backend's errors, on a fake backend that translates its own.

A backend maps its driver's errors to the domain's (``translate_error``):
wherever they surface — inside the block, in a hook, at COMMIT — the caller
sees the domain's error, and each lost race is counted once. A failure of
the cleanup never hides the error that caused it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import pytest

from domain.aggregate import Aggregate, Event
from domain.errors import ConcurrencyError
from service_layer.unit_of_work import AbstractUnitOfWork, repository
from tests.kernel.factories import ThingFactory
from tests.kernel.things import Thing
from tests.kernel.things_uow import InMemoryThingUnitOfWork

pytestmark = pytest.mark.unit


class DriverRace(LookupError):
    """What this pretend driver raises for a lost race."""


class TranslatingUnitOfWork(InMemoryThingUnitOfWork):
    """The fake, with a driver whose lost races it translates, and a rollback that may fail."""

    def __init__(self, *, rollback_fails: bool = False) -> None:
        super().__init__()
        self.rollback_fails = rollback_fails

    def translate_error(self, exc: BaseException) -> Exception | None:
        if isinstance(exc, DriverRace):
            return ConcurrencyError(f"translated: {exc}")
        return None

    async def _rollback(self) -> None:
        await super()._rollback()
        if self.rollback_fails:
            raise RuntimeError("the rollback failed too")


class FailingHook:
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def before_commit(
        self, uow: AbstractUnitOfWork, raised: Sequence[tuple[Aggregate[Any], Event]]
    ) -> None:
        raise self.error


async def test_a_driver_error_inside_the_block_surfaces_translated_and_counted() -> None:
    uow = TranslatingUnitOfWork()

    with pytest.raises(ConcurrencyError, match="translated: row locked") as raised:
        async with uow:
            raise DriverRace("row locked")

    assert isinstance(raised.value.__cause__, DriverRace)
    assert uow.conflicts == 1


async def test_a_driver_error_at_commit_surfaces_translated_and_counted_once() -> None:
    uow = TranslatingUnitOfWork()
    uow.hooks.append(FailingHook(DriverRace("serialization failure")))

    async def add_and_commit() -> None:
        async with uow:
            uow.things.add(ThingFactory.build())
            await uow.commit()

    with pytest.raises(ConcurrencyError, match="translated: serialization failure"):
        await add_and_commit()

    assert uow.conflicts == 1


async def test_a_conflict_the_backend_raises_as_such_is_counted_once() -> None:
    uow = TranslatingUnitOfWork()
    uow.hooks.append(FailingHook(ConcurrencyError("stale")))

    with pytest.raises(ConcurrencyError, match="stale"):
        async with uow:
            await uow.commit()

    assert uow.conflicts == 1


async def test_an_error_that_is_no_race_is_not_counted() -> None:
    uow = TranslatingUnitOfWork()
    uow.hooks.append(FailingHook(ValueError("a bug")))

    with pytest.raises(ValueError, match="a bug"):
        async with uow:
            await uow.commit()

    assert uow.conflicts == 0


async def test_a_commit_whose_rollback_fails_too_reports_the_commits_error_and_logs_the_other(
    caplog: pytest.LogCaptureFixture,
) -> None:
    uow = TranslatingUnitOfWork(rollback_fails=True)
    uow.hooks.append(FailingHook(ValueError("the commit failed")))

    async with uow:
        with pytest.raises(ValueError, match="the commit failed"):
            await uow.commit()
        uow.rollback_fails = False

    (record,) = [r for r in caplog.records if r.name == "service_layer.unit_of_work"]
    assert record.getMessage() == "rolling back after a failed commit failed as well"
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "the rollback failed too"


async def test_an_explicit_rollback_that_fails_raises_its_error() -> None:
    uow = TranslatingUnitOfWork(rollback_fails=True)

    async with uow:
        with pytest.raises(RuntimeError, match="the rollback failed too"):
            await uow.rollback()
        uow.rollback_fails = False


class UnitOfWorkThatCannotClose(InMemoryThingUnitOfWork):
    async def _close(self) -> None:
        raise OSError("connection lost during close")


async def test_a_close_failing_after_the_blocks_error_is_logged_naming_that_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    error = LookupError("the block's own error")

    with pytest.raises(LookupError):
        async with UnitOfWorkThatCannotClose():
            raise error

    (record,) = [r for r in caplog.records if r.name == "service_layer.unit_of_work"]
    assert record.getMessage() == f"ending the unit of work failed while {error!r} propagated"


def test_a_repository_declaration_remembers_its_type_key_and_attribute() -> None:
    class Declared(AbstractUnitOfWork):
        gadgets = repository(Thing, UUID)

    declaration = Declared.gadgets
    assert (declaration.kind, declaration.key, declaration.name) == (Thing, UUID, "gadgets")


async def test_the_caller_of_commit_sees_the_translated_error_inside_the_block() -> None:
    uow = TranslatingUnitOfWork()
    uow.hooks.append(FailingHook(DriverRace("deadlock")))

    async with uow:
        with pytest.raises(ConcurrencyError, match="translated: deadlock"):
            await uow.commit()

    assert uow.conflicts == 1


async def test_every_lost_race_of_a_unit_of_work_is_counted() -> None:
    uow = TranslatingUnitOfWork()

    for attempt in range(2):
        with pytest.raises(ConcurrencyError):
            async with uow:
                raise DriverRace(f"lost race {attempt}")

    assert uow.conflicts == 2
