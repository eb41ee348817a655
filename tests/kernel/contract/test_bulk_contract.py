"""``add_many``: thousands of aggregates in one unit of work, versions and events intact.

On PostgreSQL and SQLite the rows are written straight away (``COPY`` or a
Core ``executemany``), yet the aggregates behave as if added one by one: the
same object comes back from ``get``, later changes are saved, and nothing
survives without a commit. Every scenario runs on every backend and flavour.
"""

from __future__ import annotations

import pytest

from domain.errors import DuplicateKeyError
from service_layer.repository import Range
from tests.kernel.contract.conftest import PartUowFactory
from tests.kernel.contract.steps import load_part, store_parts
from tests.kernel.factories import PartFactory
from tests.kernel.parts import PartRestocked

MANY = 200


class Boom(Exception):
    """Raised by a test on purpose."""


async def count_parts(part_uow_factory: PartUowFactory) -> int:
    async with part_uow_factory() as uow:
        return await uow.parts.count()


async def test_every_aggregate_of_add_many_is_stored_on_commit(
    part_uow_factory: PartUowFactory,
) -> None:
    await store_parts(part_uow_factory, *PartFactory.build_batch(MANY))

    assert await count_parts(part_uow_factory) == MANY


async def test_add_many_gives_every_aggregate_version_1_on_commit(
    part_uow_factory: PartUowFactory,
) -> None:
    parts = PartFactory.build_batch(3)
    await store_parts(part_uow_factory, *parts)

    stored = await load_part(part_uow_factory, parts[0].id)

    assert [part.version for part in parts] == [1, 1, 1]
    assert stored is not None
    assert stored.version == 1


async def test_events_raised_before_add_many_are_collected(
    part_uow_factory: PartUowFactory,
) -> None:
    parts = PartFactory.build_batch(3)
    for part in parts:
        part.restock(2)

    async with part_uow_factory() as uow:
        await uow.parts.add_many(parts)
        await uow.commit()
        events = list(uow.collect_new_events())

    assert {e.part_id for e in events if isinstance(e, PartRestocked)} == {p.id for p in parts}


async def test_get_after_add_many_returns_the_same_object(part_uow_factory: PartUowFactory) -> None:
    part = PartFactory.build()

    async with part_uow_factory() as uow:
        await uow.parts.add_many([part, *PartFactory.build_batch(2)])
        assert await uow.parts.get(part.id) is part


async def test_list_after_add_many_returns_the_same_objects(
    part_uow_factory: PartUowFactory,
) -> None:
    parts = PartFactory.build_batch(3)

    async with part_uow_factory() as uow:
        await uow.parts.add_many(parts)
        found = await uow.parts.list()

    assert {id(part) for part in found} == {id(part) for part in parts}


async def test_a_change_made_after_add_many_is_kept_by_the_commit(
    part_uow_factory: PartUowFactory,
) -> None:
    part = PartFactory.build(stock=1)

    async with part_uow_factory() as uow:
        await uow.parts.add_many([part])
        part.restock(4)
        await uow.commit()

    stored = await load_part(part_uow_factory, part.id)
    assert stored is not None
    assert stored.stock == 5


async def test_a_change_made_after_add_many_is_seen_by_a_query(
    part_uow_factory: PartUowFactory,
) -> None:
    part = PartFactory.build(stock=1)

    async with part_uow_factory() as uow:
        await uow.parts.add_many([part, PartFactory.build(stock=1)])
        part.restock(9)
        assert await uow.parts.count(where={"stock": Range(gt=5)}) == 1


async def test_a_change_made_after_the_commit_is_kept_by_the_next_one(
    part_uow_factory: PartUowFactory,
) -> None:
    part = PartFactory.build(stock=1)

    async with part_uow_factory() as uow:
        await uow.parts.add_many([part])
        await uow.commit()
        part.restock(1)
        await uow.commit()

    stored = await load_part(part_uow_factory, part.id)
    assert stored is not None
    assert stored.stock == 2


async def test_an_aggregate_of_add_many_can_be_removed_before_commit(
    part_uow_factory: PartUowFactory,
) -> None:
    kept, removed = PartFactory.build(), PartFactory.build()

    async with part_uow_factory() as uow:
        await uow.parts.add_many([kept, removed])
        await uow.parts.remove(removed)
        await uow.commit()

    assert await load_part(part_uow_factory, removed.id) is None
    assert await count_parts(part_uow_factory) == 1


async def test_add_many_without_commit_keeps_nothing(part_uow_factory: PartUowFactory) -> None:
    async with part_uow_factory() as uow:
        await uow.parts.add_many(PartFactory.build_batch(5))

    assert await count_parts(part_uow_factory) == 0


async def test_an_explicit_rollback_discards_add_many(part_uow_factory: PartUowFactory) -> None:
    part = PartFactory.build()

    async with part_uow_factory() as uow:
        await uow.parts.add_many([part])
        await uow.rollback()
        assert await uow.parts.get(part.id) is None


async def test_add_many_in_a_failed_savepoint_keeps_nothing_of_it(
    part_uow_factory: PartUowFactory,
) -> None:
    before = PartFactory.build(name="before")

    async with part_uow_factory() as uow:
        await uow.parts.add_many([before])

        async def add_in_savepoint_then_fail() -> None:
            async with uow.savepoint():
                await uow.parts.add_many(PartFactory.build_batch(3))
                raise Boom

        with pytest.raises(Boom):
            await add_in_savepoint_then_fail()
        await uow.commit()

    assert await count_parts(part_uow_factory) == 1


async def test_a_failed_savepoint_undoes_its_changes_to_aggregates_of_add_many(
    part_uow_factory: PartUowFactory,
) -> None:
    part = PartFactory.build(stock=1)

    async with part_uow_factory() as uow:
        await uow.parts.add_many([part])

        async def change_in_savepoint_then_fail() -> None:
            async with uow.savepoint():
                part.restock(10)
                raise Boom

        with pytest.raises(Boom):
            await change_in_savepoint_then_fail()
        await uow.commit()

    stored = await load_part(part_uow_factory, part.id)
    assert stored is not None
    assert stored.stock == 1


async def test_add_many_of_an_existing_id_is_refused_and_keeps_nothing(
    part_uow_factory: PartUowFactory,
) -> None:
    existing = PartFactory.build()
    await store_parts(part_uow_factory, existing)

    async def add_a_duplicate_and_commit() -> None:
        async with part_uow_factory() as uow:
            await uow.parts.add_many(
                [PartFactory.build(name="new"), PartFactory.build(id=existing.id)]
            )
            await uow.commit()

    with pytest.raises(DuplicateKeyError):
        await add_a_duplicate_and_commit()

    assert await count_parts(part_uow_factory) == 1


async def test_the_same_id_twice_in_one_add_many_is_refused(
    part_uow_factory: PartUowFactory,
) -> None:
    part = PartFactory.build()

    async with part_uow_factory() as uow:
        with pytest.raises(DuplicateKeyError, match="twice in one add_many"):
            await uow.parts.add_many([part, PartFactory.build(id=part.id)])


async def test_add_many_of_nothing_changes_nothing(part_uow_factory: PartUowFactory) -> None:
    async with part_uow_factory() as uow:
        await uow.parts.add_many([])
        await uow.commit()

    assert await count_parts(part_uow_factory) == 0
