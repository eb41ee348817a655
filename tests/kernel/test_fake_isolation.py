"""The fake keeps what a caller mutates away from its store until commit, nested values too."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from adapters.unit_of_work import InMemoryUnitOfWork
from domain.aggregate import Aggregate
from domain.errors import ConcurrencyError
from service_layer.unit_of_work import repository
from tests.kernel.factories import ThingFactory
from tests.kernel.things_uow import InMemoryThingUnitOfWork

pytestmark = pytest.mark.unit


class Basket(Aggregate[UUID]):
    """An aggregate holding a mutable value, which a shallow copy would share."""

    def __init__(self) -> None:
        self.id = uuid4()
        self.items: list[str] = []


class BasketUnitOfWork(InMemoryUnitOfWork):
    baskets = repository(Basket, UUID)


async def test_an_item_appended_without_commit_never_reaches_the_store() -> None:
    uow = BasketUnitOfWork()
    basket = Basket()
    async with uow:
        uow.baskets.add(basket)
        await uow.commit()

    async with uow:
        found = await uow.baskets.get(basket.id)
        assert found is not None
        found.items.append("never committed")

    async with uow:
        again = await uow.baskets.get(basket.id)
    assert again is not None
    assert again.items == []


async def test_a_stale_write_names_each_aggregate_another_writer_changed() -> None:
    first, second = ThingFactory.build(), ThingFactory.build()
    uow = InMemoryThingUnitOfWork()
    async with uow:
        uow.things.add(first)
        uow.things.add(second)
        await uow.commit()
    loser = InMemoryThingUnitOfWork(uow.store)

    async with loser:
        stale = [await loser.things.get(t.id) for t in (first, second)]
        async with InMemoryThingUnitOfWork(uow.store) as winner:
            for t in (first, second):
                fresh = await winner.things.get(t.id)
                assert fresh is not None
                fresh.increment()
            await winner.commit()
        for thing in stale:
            assert thing is not None
            thing.increment(2)
        with pytest.raises(ConcurrencyError) as raised:
            await loser.commit()

    assert str(raised.value) == (
        f"Thing {first.id!r} was changed by another writer; "
        f"Thing {second.id!r} was changed by another writer"
    )


async def test_a_duplicate_names_each_id_already_taken() -> None:
    first, second = ThingFactory.build(), ThingFactory.build()
    uow = InMemoryThingUnitOfWork()
    async with uow:
        uow.things.add(first)
        uow.things.add(second)
        await uow.commit()

    async with uow:
        uow.things.add(ThingFactory.build(id=first.id))
        uow.things.add(ThingFactory.build(id=second.id))
        with pytest.raises(ConcurrencyError) as raised:
            await uow.commit()

    assert set(str(raised.value).split("; ")) == {
        f"Thing {first.id!r} already exists",
        f"Thing {second.id!r} already exists",
    }
