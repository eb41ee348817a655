"""The repository contract: the fake, PostgreSQL and SQLite behave alike.

Every test runs once per backend (``memory`` is marked ``unit``, the
databases ``integration``); see the ``backend`` fixture in tests/conftest.py.
"""

from __future__ import annotations

from uuid import uuid4

import pytest

from tests.kernel.contract.conftest import UowFactory
from tests.kernel.contract.steps import load, names, store
from tests.kernel.factories import ThingFactory


async def test_an_added_aggregate_can_be_read_back_after_commit(uow_factory: UowFactory) -> None:
    thing = ThingFactory.build(name="anvil", count=3)
    await store(uow_factory, thing)

    found = await load(uow_factory, thing.id)

    assert found is not None
    assert (found.id, found.name, found.count) == (thing.id, "anvil", 3)


async def test_get_returns_none_when_the_aggregate_is_absent(uow_factory: UowFactory) -> None:
    assert await load(uow_factory, uuid4()) is None


async def test_get_within_one_unit_of_work_returns_the_same_object(
    uow_factory: UowFactory,
) -> None:
    thing = ThingFactory.build()
    await store(uow_factory, thing)

    async with uow_factory() as uow:
        first = await uow.things.get(thing.id)
        second = await uow.things.get(thing.id)

    assert first is second


async def test_list_keeps_only_aggregates_matching_where(uow_factory: UowFactory) -> None:
    await store(
        uow_factory,
        ThingFactory.build(name="a", count=1),
        ThingFactory.build(name="b", count=2),
        ThingFactory.build(name="c", count=1),
    )

    async with uow_factory() as uow:
        found = await uow.things.list(where={"count": 1})

    assert sorted(thing.name for thing in found) == ["a", "c"]


async def test_list_orders_ascending_by_attribute(uow_factory: UowFactory) -> None:
    await store(uow_factory, *(ThingFactory.build(name=n) for n in ["b", "c", "a"]))

    async with uow_factory() as uow:
        found = await uow.things.list(order_by="name")

    assert [thing.name for thing in found] == ["a", "b", "c"]


async def test_list_orders_descending_with_a_leading_minus(uow_factory: UowFactory) -> None:
    await store(uow_factory, *(ThingFactory.build(name=n) for n in ["b", "c", "a"]))

    async with uow_factory() as uow:
        found = await uow.things.list(order_by="-name")

    assert [thing.name for thing in found] == ["c", "b", "a"]


async def test_list_orders_by_several_keys_in_turn(uow_factory: UowFactory) -> None:
    await store(
        uow_factory,
        ThingFactory.build(name="b", count=1),
        ThingFactory.build(name="a", count=1),
        ThingFactory.build(name="c", count=2),
    )

    async with uow_factory() as uow:
        found = await uow.things.list(order_by=["-count", "name"])

    assert [thing.name for thing in found] == ["c", "a", "b"]


async def test_list_returns_at_most_limit_aggregates(uow_factory: UowFactory) -> None:
    await store(uow_factory, *(ThingFactory.build(name=n) for n in ["b", "c", "a"]))

    async with uow_factory() as uow:
        found = await uow.things.list(order_by="name", limit=2)

    assert [thing.name for thing in found] == ["a", "b"]


async def test_list_sees_aggregates_added_in_the_same_unit_of_work(
    uow_factory: UowFactory,
) -> None:
    async with uow_factory() as uow:
        uow.things.add(ThingFactory.build(name="fresh"))
        found = await uow.things.list()

    assert [thing.name for thing in found] == ["fresh"]


@pytest.mark.parametrize(
    ("where", "order_by"),
    [({"colour": "red"}, ()), (None, "colour"), (None, "-colour")],
    ids=["where", "order_by", "order_by_desc"],
)
async def test_list_refuses_an_attribute_the_aggregate_does_not_have(
    uow_factory: UowFactory, where: dict[str, str] | None, order_by: str
) -> None:
    async with uow_factory() as uow:
        with pytest.raises(ValueError, match="Thing cannot be filtered or ordered by 'colour'"):
            await uow.things.list(where=where, order_by=order_by)


async def test_list_refuses_a_negative_limit(uow_factory: UowFactory) -> None:
    async with uow_factory() as uow:
        with pytest.raises(ValueError, match="limit must be >= 0"):
            await uow.things.list(limit=-1)


async def test_a_removed_aggregate_is_gone_after_commit(uow_factory: UowFactory) -> None:
    kept, removed = ThingFactory.build(name="kept"), ThingFactory.build(name="removed")
    await store(uow_factory, kept, removed)

    async with uow_factory() as uow:
        found = await uow.things.get(removed.id)
        assert found is not None
        await uow.things.remove(found)
        await uow.commit()

    assert await names(uow_factory) == {"kept"}


async def test_a_removed_aggregate_is_not_returned_by_get_before_commit(
    uow_factory: UowFactory,
) -> None:
    thing = ThingFactory.build()
    await store(uow_factory, thing)

    async with uow_factory() as uow:
        found = await uow.things.get(thing.id)
        assert found is not None
        await uow.things.remove(found)
        assert await uow.things.get(thing.id) is None


async def test_list_with_a_limit_of_0_returns_nothing(uow_factory: UowFactory) -> None:
    await store(uow_factory, ThingFactory.build())

    async with uow_factory() as uow:
        assert await uow.things.list(limit=0) == []


async def test_an_aggregate_changed_then_removed_is_gone_after_commit(
    uow_factory: UowFactory,
) -> None:
    thing = ThingFactory.build(name="doomed")
    await store(uow_factory, thing)

    async with uow_factory() as uow:
        found = await uow.things.get(thing.id)
        assert found is not None
        found.rename("changed, then removed")
        await uow.things.remove(found)
        await uow.commit()

    assert await names(uow_factory) == set()


async def test_removing_an_aggregate_twice_removes_it_once(uow_factory: UowFactory) -> None:
    kept, removed = ThingFactory.build(name="kept"), ThingFactory.build(name="removed")
    await store(uow_factory, kept, removed)

    async with uow_factory() as uow:
        found = await uow.things.get(removed.id)
        assert found is not None
        await uow.things.remove(found)
        await uow.things.remove(found)
        await uow.commit()

    assert await names(uow_factory) == {"kept"}
