"""The in-memory fake's bookkeeping where the contract suite does not reach, async and sync."""

from __future__ import annotations

import pytest

from adapters.repository import InMemoryStore
from tests.kernel.things import Thing
from tests.kernel.things_uow import InMemorySyncThingUnitOfWork, InMemoryThingUnitOfWork

pytestmark = pytest.mark.unit


async def test_an_aggregate_added_again_after_its_removal_is_found_again() -> None:
    store = InMemoryStore()
    thing = Thing("a")
    uow = InMemoryThingUnitOfWork(store)

    async with uow:
        uow.things.add(thing)
        await uow.things.remove(thing)
        assert await uow.things.get(thing.id) is None
        uow.things.add(thing)
        assert await uow.things.get(thing.id) is thing
        await uow.commit()

    assert [t.id for t in store.all(Thing)] == [thing.id]


def test_the_sync_fake_finds_an_aggregate_added_again_after_its_removal() -> None:
    store = InMemoryStore()
    thing = Thing("a")
    uow = InMemorySyncThingUnitOfWork(store)

    with uow:
        uow.things.add(thing)
        uow.things.remove(thing)
        assert uow.things.get(thing.id) is None
        uow.things.add(thing)
        assert uow.things.get(thing.id) is thing
        uow.commit()

    assert [t.id for t in store.all(Thing)] == [thing.id]


async def test_the_store_holds_only_committed_copies() -> None:
    store = InMemoryStore()
    kept, dropped = Thing("kept"), Thing("dropped")

    async with InMemoryThingUnitOfWork(store) as uow:
        uow.things.add(kept)
        await uow.commit()
        uow.things.add(dropped)

    (stored,) = store.all(Thing)
    assert (stored.id, stored.name) == (kept.id, "kept")
    assert stored is not kept
    assert list(InMemoryStore().all(Thing)) == []
