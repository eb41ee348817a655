"""Small steps the contract tests share: store things, read them back in a new unit of work."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from tests.kernel.things import Thing
from tests.kernel.things_uow import ThingUnitOfWork


async def store(uow_factory: Callable[[], ThingUnitOfWork], *things: Thing) -> None:
    async with uow_factory() as uow:
        for thing in things:
            uow.things.add(thing)
        await uow.commit()


async def load(uow_factory: Callable[[], ThingUnitOfWork], ident: UUID) -> Thing | None:
    async with uow_factory() as uow:
        return await uow.things.get(ident)


async def names(uow_factory: Callable[[], ThingUnitOfWork]) -> set[str]:
    async with uow_factory() as uow:
        return {thing.name for thing in await uow.things.list()}
