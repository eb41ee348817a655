"""Audit columns: the kernel stamps ``created_at`` and ``updated_at`` on every backend.

:class:`Part`'s mapping opts in with ``audit_columns()``; the domain class
never mentions them. The clock is the kernel's ``utc_now``, pinned per test.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from adapters import audit
from service_layer.repository import Range
from tests.kernel.contract.conftest import PartUowFactory
from tests.kernel.contract.steps import load_part, store_parts
from tests.kernel.factories import PartFactory
from tests.kernel.parts import Part

T1 = datetime(2024, 6, 1, 9, 30, 0, 250000, tzinfo=UTC)
T2 = T1 + timedelta(hours=5)


@dataclass
class Clock:
    now: datetime = T1


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    pinned = Clock()
    monkeypatch.setattr(audit, "utc_now", lambda: pinned.now)
    return pinned


def stamps(part: Part | None) -> tuple[datetime, datetime]:
    assert part is not None
    return vars(part)["created_at"], vars(part)["updated_at"]


async def restock(part_uow_factory: PartUowFactory, part: Part, by: int) -> None:
    async with part_uow_factory() as uow:
        found = await uow.parts.get(part.id)
        assert found is not None
        found.restock(by)
        await uow.commit()


async def test_an_added_aggregate_gets_both_stamps_on_commit(
    part_uow_factory: PartUowFactory, clock: Clock
) -> None:
    part = PartFactory.build()
    async with part_uow_factory() as uow:
        uow.parts.add(part)
        await uow.commit()

    assert stamps(await load_part(part_uow_factory, part.id)) == (T1, T1)


async def test_add_many_stamps_every_aggregate(
    part_uow_factory: PartUowFactory, clock: Clock
) -> None:
    parts = PartFactory.build_batch(3)
    await store_parts(part_uow_factory, *parts)

    for part in parts:
        assert stamps(await load_part(part_uow_factory, part.id)) == (T1, T1)


async def test_a_change_moves_updated_at_and_keeps_created_at(
    part_uow_factory: PartUowFactory, clock: Clock
) -> None:
    part = PartFactory.build()
    await store_parts(part_uow_factory, part)
    clock.now = T2

    await restock(part_uow_factory, part, 3)

    assert stamps(await load_part(part_uow_factory, part.id)) == (T1, T2)


async def test_a_change_after_add_many_in_the_same_block_is_stamped_as_an_update(
    part_uow_factory: PartUowFactory, clock: Clock
) -> None:
    part = PartFactory.build()
    async with part_uow_factory() as uow:
        await uow.parts.add_many([part])
        await uow.commit()
        clock.now = T2
        part.restock(1)
        await uow.commit()

    assert stamps(await load_part(part_uow_factory, part.id)) == (T1, T2)


async def test_committing_an_unchanged_aggregate_keeps_updated_at(
    part_uow_factory: PartUowFactory, clock: Clock
) -> None:
    part = PartFactory.build()
    await store_parts(part_uow_factory, part)
    clock.now = T2

    async with part_uow_factory() as uow:
        assert await uow.parts.get(part.id) is not None
        await uow.commit()

    assert stamps(await load_part(part_uow_factory, part.id)) == (T1, T1)


async def test_stamps_read_back_are_aware_and_in_utc(part_uow_factory: PartUowFactory) -> None:
    part = PartFactory.build()
    await store_parts(part_uow_factory, part)

    created, updated = stamps(await load_part(part_uow_factory, part.id))

    assert created.utcoffset() == updated.utcoffset() == timedelta(0)


async def test_created_at_can_be_filtered_by(
    part_uow_factory: PartUowFactory, clock: Clock
) -> None:
    await store_parts(part_uow_factory, PartFactory.build(name="early"))
    clock.now = T2
    await store_parts(part_uow_factory, PartFactory.build(name="late"))

    async with part_uow_factory() as uow:
        found = await uow.parts.list(where={"created_at": Range(gt=T1)})

    assert [part.name for part in found] == ["late"]
