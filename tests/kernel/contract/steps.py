"""Small steps the contract tests share: store things, read them back, fail a savepoint."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from uuid import UUID

import pytest

from service_layer.unit_of_work import AbstractUnitOfWork
from tests.kernel.contract.conftest import PartUowFactory, UowFactory
from tests.kernel.parts import Part
from tests.kernel.things import Thing


async def store(uow_factory: UowFactory, *things: Thing) -> None:
    async with uow_factory() as uow:
        for thing in things:
            uow.things.add(thing)
        await uow.commit()


async def load(uow_factory: UowFactory, ident: UUID) -> Thing | None:
    async with uow_factory() as uow:
        return await uow.things.get(ident)


async def names(uow_factory: UowFactory) -> set[str]:
    async with uow_factory() as uow:
        return {thing.name for thing in await uow.things.list()}


async def store_parts(part_uow_factory: PartUowFactory, *parts: Part) -> None:
    async with part_uow_factory() as uow:
        await uow.parts.add_many(parts)
        await uow.commit()


async def load_part(part_uow_factory: PartUowFactory, ident: UUID) -> Part | None:
    async with part_uow_factory() as uow:
        return await uow.parts.get(ident)


class Boom(Exception):
    """Raised by a test on purpose."""


async def _savepoint_then_raise(uow: AbstractUnitOfWork, work: Callable[[], object]) -> None:
    async with uow.savepoint():
        done = work()
        if inspect.isawaitable(done):
            await done
        raise Boom


async def in_failing_savepoint(uow: AbstractUnitOfWork, work: Callable[[], object]) -> None:
    """Run ``work`` (sync or async) in a savepoint of ``uow`` whose body then raises."""
    with pytest.raises(Boom):
        await _savepoint_then_raise(uow, work)
