"""Small steps the contract tests share: store things, read them back in a new unit of work."""

from __future__ import annotations

from uuid import UUID

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
